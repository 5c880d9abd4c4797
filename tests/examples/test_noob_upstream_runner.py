"""Upstream noob 1002's own scheduler runs a tube in the test environment.

noob-core 0.2 changed the edge tuples noob 1002's scheduler hands it (``expected
tuple of length 5, but got tuple of length 4``); the ``test`` extra pins the
noob-core that upstream's runners work with. Needs ``noob==1002.0.0`` (Python >= 3.11).
"""

# no ``from __future__ import annotations``: noob reads the nodes' annotations at run time
import warnings
from collections.abc import Generator
from typing import Annotated

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # noob warns when XDG_RUNTIME_DIR is unset
    pytest.importorskip("noob.runner.sync", reason="noob 1002 is not installed (it needs Python >= 3.11)")
from noob import Name  # noqa: E402
from noob.runner.sync import SynchronousRunner  # noqa: E402
from noob.tube import Tube, TubeSpecification  # noqa: E402


def count(limit: int = 5) -> Generator[Annotated[int, Name("index")], None, None]:
    yield from range(limit)


def double(left: int) -> int:
    return left * 2


def test_upstreams_synchronous_runner_runs_a_tube():
    spec = TubeSpecification.model_validate(
        {
            "noob_id": "agentzero-upstream-check",
            "nodes": {
                "count": {"type": f"{__name__}.count", "params": {"limit": 5}},
                "double": {"type": f"{__name__}.double", "depends": [{"left": "count.index"}]},
                "out": {"type": "return", "depends": [{"value": "double.value"}]},
            },
        }
    )
    runner = SynchronousRunner(Tube.from_specification(spec))
    assert runner.run(n=3) == [{"value": 0}, {"value": 2}, {"value": 4}]
