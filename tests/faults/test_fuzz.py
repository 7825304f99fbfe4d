"""Scene files built from the scene's JSON Schema by hypothesis (random valid and invalid values for every key,
unknown keys, missing sections, text that is not TOML): ``llstudio check`` exits 0 or 2 and never shows a
traceback. In this process through the CLI's ``main`` for speed, a few through the real command."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import fault_harness as h


@pytest.fixture(autouse=True)
def _long_only(request):
    h.skip_long(request)

BASE = h.CORRUPT_SCENE
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)


def _one(text: str) -> h.FuzzOutcome:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.toml"
        p.write_text(text, encoding="utf-8", errors="surrogateescape")
        return h.check_in_process(p)


def _assert_clean(out: h.FuzzOutcome, text: str):
    assert not out.traceback, f"{out.traceback}\n--- scene:\n{text}"
    assert out.rc in (0, 2), f"exit {out.rc}\n--- scene:\n{text}"


@settings(max_examples=150, **SETTINGS)
@given(h.scene_strategy(BASE))
def test_schema_scenes_check_cleanly(d):
    text = h.to_toml(d)
    _assert_clean(_one(text), text)


@settings(max_examples=40, **SETTINGS)
@given(h.text_strategy())
def test_raw_texts_check_cleanly(text):
    _assert_clean(_one(text), text)


@pytest.mark.faults_long
@settings(max_examples=2000, **SETTINGS)
@given(h.scene_strategy(BASE))
def test_many_schema_scenes(d):
    text = h.to_toml(d)
    _assert_clean(_one(text), text)


@settings(max_examples=3, **SETTINGS)
@given(h.scene_strategy(BASE))
def test_a_few_through_the_real_command(d):
    text = h.to_toml(d)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "fuzz.toml"
        p.write_text(text)
        proc = subprocess.run([sys.executable, "-m", "llstudio", "check", str(p)], capture_output=True, text=True,
                              env=h.cli_env(Path(tmp) / "cache"), timeout=120)
    assert not h.has_traceback(proc.stderr + proc.stdout), f"{proc.stderr}\n--- scene:\n{text}"
    assert proc.returncode in (0, 2), f"exit {proc.returncode}: {proc.stderr}\n--- scene:\n{text}"
