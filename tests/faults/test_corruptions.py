"""Each kind of cache file damaged in each way (cut short, bits flipped, arrays or JSON of the wrong shape,
garbage): the render succeeds, warns naming the file, and the film is the one an intact cache gives."""

from __future__ import annotations

import random

import pytest

import fault_harness as h


@pytest.fixture(autouse=True)
def _long_only(request):
    h.skip_long(request)

pytestmark = pytest.mark.render

KINDS = list(h.FILE_KINDS)
# The CI sample: every kind of file once, each with another corruption.
CI = [(kind, h.CORRUPTIONS[i % len(h.CORRUPTIONS)]) for i, kind in enumerate(KINDS)]
LONG = [(k, c) for k in KINDS for c in h.CORRUPTIONS if (k, c) not in CI]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return h.CorruptionBench(tmp_path_factory.mktemp("faults-corrupt"))


def _check(bench, kind, how):
    res = bench.case(kind, how, random.Random(f"15-{kind}-{how}"))
    assert res.ran, f"{res.file}: {res.why}"
    assert res.warned, f"{res.file}: {res.why}"
    assert res.identical, f"{res.file}: {res.why}"


@pytest.mark.parametrize("kind, how", [pytest.param(k, c, id=f"{k}-{c}") for k, c in CI])
def test_corrupt_cache_file_is_repaired(bench, kind, how):
    _check(bench, kind, how)


@pytest.mark.faults_long
@pytest.mark.parametrize("kind, how", [pytest.param(k, c, id=f"{k}-{c}") for k, c in LONG])
def test_every_file_kind_and_corruption(bench, kind, how):
    _check(bench, kind, how)


def test_cache_list_survives_a_garbage_manifest(tmp_path):
    """issue 15 #2, through the real command: ``llstudio cache list`` over a capture whose manifest is garbage."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    (cache / "captures" / "0123456789abcdef01234567").mkdir(parents=True)
    (cache / "captures" / "0123456789abcdef01234567" / "manifest.json").write_text("{{{")
    proc = subprocess.run([sys.executable, "-m", "llstudio", "cache", "list"], capture_output=True, text=True,
                          env=h.cli_env(cache), timeout=120)
    assert not h.has_traceback(proc.stderr), proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "0123456789abcdef01234567" in proc.stdout + proc.stderr
