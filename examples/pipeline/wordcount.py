"""Your own steps: a two-step pipeline that counts the words of a text (the example of ``docs/steps.rst``).

Run it on one machine::

    python -m agentzero.pipeline run --pipeline examples.pipeline.wordcount:PIPELINES --jobs 20 \\
        --instructions '{"text": "the cat saw the other cat"}'

or each piece apart, on one machine or several::

    python -m agentzero.pipeline manager --pipelines examples.pipeline.wordcount:PIPELINES
    python -m agentzero.pipeline step examples.pipeline.wordcount:Normalize --manager tcp://HOST:PORT
    python -m agentzero.pipeline step examples.pipeline.wordcount:CountWords --manager tcp://HOST:PORT
    python -m agentzero.pipeline submit --manager tcp://HOST:PORT --pipeline wordcount \\
        --instructions '{"text": "the cat saw the other cat"}'
"""

from __future__ import annotations

import collections
import re
from typing import Any

from agentzero.pipeline import Job, JobFailed, Step


class Normalize(Step):
    """Lower-case the text and split it into words."""

    job_type = "normalize-text"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        text = data.get("text")
        if not isinstance(text, str):
            raise JobFailed(f"job {job.id} has no 'text' to count")  # retrying will not help
        return {"words": re.findall(r"[a-z0-9']+", text.lower())}


class CountWords(Step):
    """Count each word; the most frequent first."""

    job_type = "count-words"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        counts = collections.Counter(data["words"])  # a KeyError would be retried
        return {"total": sum(counts.values()), "top": counts.most_common(3)}


#: pipeline name -> its steps, in order
PIPELINES = {"wordcount": ["normalize-text", "count-words"]}
