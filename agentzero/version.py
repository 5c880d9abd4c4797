"""The version of agentzero."""

version = "0.6.0"
__version__ = version
