"""Guide-sized scripts using the worker pipeline, which ships with agentzero as :mod:`agentzero.pipeline`.

``wordcount.py`` is the two-step pipeline of ``docs/steps.rst``: your own
steps subclass :class:`agentzero.pipeline.Step`. Install the pipeline with
``pip install 'agentzero[pipeline]'`` and run ``python -m agentzero.pipeline --help``.
"""
