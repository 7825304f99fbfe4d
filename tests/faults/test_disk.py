"""Full disk and read-only places (real ones: a tmpfs or a read-only bind mount in a private mount namespace,
``unshare -rm``, which needs no root and binds root too; skipped with the reason where the platform has none),
and four renders of one scene at once into one cache."""

from __future__ import annotations

import pytest

import fault_harness as h


@pytest.fixture(autouse=True)
def _long_only(request):
    h.skip_long(request)

CASES = ("full-cache", "readonly-cache", "full-output", "readonly-output")
CI = ("full-cache", "readonly-output")


def _params(cases, long=False):
    return [pytest.param(c, marks=[pytest.mark.faults_long] if long else [], id=c) for c in cases]


def _check(case, tmp_path):
    res = h.disk_case(case, tmp_path)
    if res.skipped:
        pytest.skip(res.skipped)
    assert res.ok, res.why


@pytest.mark.parametrize("case", _params(CI))
def test_unusable_place_is_a_clean_error(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.parametrize("case", _params([c for c in CASES if c not in CI], long=True))
def test_every_unusable_place(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.render
def test_four_renders_of_one_scene_share_one_capture(tmp_path):
    res = h.concurrent_renders(tmp_path, 4)
    assert res.ok, res.why
