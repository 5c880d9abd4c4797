"""Runnable examples of what people build with agentzero."""
