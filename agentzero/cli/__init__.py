"""The ``agentzero`` command line: ``tail``, the devices (forwarder, queue, streamer) and ``keys``.

=====================================  ==============================================
:mod:`~agentzero.cli.main`             the parser, ``keys``, ``--version``, exit codes
:mod:`~agentzero.cli.tail`             ``agentzero tail``: what a PUB socket publishes
:mod:`~agentzero.cli.devices`          ZeroMQ's proxy between two sockets
:mod:`~agentzero.cli.signals`          how ``tail`` and the devices stop
=====================================  ==============================================
"""
