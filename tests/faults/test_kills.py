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
# The CI sample: SIGTERM mid-capture and SIGKILL mid-encode (the two signals tests/e2e/test_resume.py does not
# send); SIGINT is that file's.
CI = [("capture", "SIGTERM"), ("encode", "SIGKILL")]
LONG = [(st, sig) for st in h.STAGES for sig in h.SIGNALS if (st, sig) not in CI]

XFAIL = {
    "SIGTERM": pytest.mark.xfail(strict=False, reason="issue 15 #3: SIGTERM exits -15 with no message; fixed on "
                                                      "branch rel-validate (exit 143, cleanup)"),
    "encode": pytest.mark.xfail(strict=False, reason="issue 15 #3: a killed encode leaves .NAME.<random>.part.mp4 "
                                                     "for good; fixed on branch rel-validate (host~pid, swept)"),
    "render": pytest.mark.xfail(strict=False, reason="issue 15 #3: a killed film leaves its temporary film; fixed "
                                                     "on branch rel-validate (host~pid, swept)"),
}


# Where a signal lands is random: one meant for the end of a stage may hit the next, and any signal at the start of
# the encode (between the encoder's temporary film and the frame loop) leaves that film today (seen: SIGINT sent
# late in curvature). So every case of the long matrix may meet issue 15 #3 until rel-validate is merged. An export
# is over in milliseconds: its signal mostly lands after the work, while the interpreter shuts down, where SIGINT
# ends with -2 or an "Exception ignored" traceback and exit 0 (seen on main; not among the eleven defects).
LONG_XFAIL = pytest.mark.xfail(strict=False, reason="issue 15 #3: SIGTERM exits -15, and a killed or interrupted "
                                                    "encode leaves its temporary film; fixed on branch rel-validate. "
                                                    "And a signal during the interpreter's shutdown (export)")


def _marks(stage: str, sig: str, long: bool = False) -> list:
    if long:
        return [pytest.mark.faults_long, LONG_XFAIL]
    marks = []
    if sig == "SIGTERM":
        marks.append(XFAIL["SIGTERM"])
    elif stage in ("encode", "render") and sig == "SIGKILL":
        marks.append(XFAIL[stage])
    return marks


def _params(cases, long=False):
    return [pytest.param(st, sig, marks=_marks(st, sig, long), id=f"{st}-{sig}") for st, sig in cases]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, request):
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


@pytest.mark.parametrize("stage, sig", _params(CI))
def test_killed_run_resumes_to_the_same_film(reference, stage, sig, tmp_path):
    _check(reference, stage, sig, tmp_path)


@pytest.mark.parametrize("stage, sig", _params(LONG, long=True))
def test_every_stage_and_signal(reference, stage, sig, tmp_path):
    _check(reference, stage, sig, tmp_path)
