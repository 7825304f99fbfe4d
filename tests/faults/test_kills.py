"""A real ``llstudio render`` (or ``export``) killed at a random point of one stage by SIGKILL, SIGTERM or SIGINT,
then rerun: the rerun succeeds, its film equals the uninterrupted film frame for frame (lossless H.264, PNG
stills, exported arrays), and no temporary file is left. A caught signal ends cleanly (130 for SIGINT, 143 for
SIGTERM, no traceback). The points are drawn from a seeded RNG, so a failure reproduces."""

from __future__ import annotations

import random

import pytest

import fault_harness as h


@pytest.fixture(autouse=True)
def _long_only(request):
    h.skip_long(request)

pytestmark = pytest.mark.render

SEED = 15
# Every stage x signal runs with the long matrix (-m faults_long; python benchmarks/faults.py prints its figures).
# CI kills through tests/e2e/test_resume.py instead: SIGKILL mid-capture, resumed to the same numbers, and SIGKILL,
# SIGINT and SIGTERM mid-film (no half-written film, the temporary one swept); tests/faults/test_harness.py keeps
# the harness itself tested. A CI sample here (37 s with its reference film) kept the suite over its 10 minutes on
# 2 cores.
LONG = [(st, sig) for st in h.STAGES for sig in h.SIGNALS]


def _marks(stage: str, sig: str, long: bool = False) -> list:
    return [pytest.mark.faults_long] if long else []


def _params(cases, long=False):
    return [pytest.param(st, sig, marks=_marks(st, sig, long), id=f"{st}-{sig}") for st, sig in cases]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, request):
    # Module-scoped fixtures are set up before the autouse skip runs: skip here, before building the film.
    if not h.long_selected(request.config):
        pytest.skip("the long fault matrix: pytest -m faults_long, or python benchmarks/faults.py")
    parts = ("mp4", "png", "export") if h.long_selected(request.config) else ("mp4",)
    return h.make_reference(tmp_path_factory.mktemp("faults-ref"), parts)


def _check(reference, stage, sig, tmp_path):
    rng = random.Random(f"{SEED}-{stage}-{sig}")
    res = h.kill_once(reference, stage, sig, rng, tmp_path / "run")
    assert res.landed, res.why
    assert res.resumed_rc == 0, res.why
    assert res.identical, res.why
    assert not res.left, res.why
    assert res.ok, res.why


@pytest.mark.parametrize("stage, sig", _params(LONG, long=True))
def test_every_stage_and_signal(reference, stage, sig, tmp_path):
    _check(reference, stage, sig, tmp_path)
