"""The fault suite: a small sample runs with the rest of the suite; the whole matrix (every stage x signal, every
file kind x corruption, more fuzz cases) is marked ``faults_long`` and runs with ``-m faults_long`` (or in
``python benchmarks/faults.py``, which prints the figures)."""

from __future__ import annotations

import pytest


def _long_selected(config) -> bool:
    return "faults_long" in (config.getoption("markexpr", "") or "") and "not faults_long" not in config.getoption(
        "markexpr", "")


def pytest_collection_modifyitems(config, items):
    if _long_selected(config):
        return
    skip = pytest.mark.skip(reason="the long fault matrix: pytest -m faults_long, or python benchmarks/faults.py")
    for item in items:
        if item.get_closest_marker("faults_long") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def long_run(request) -> bool:
    return _long_selected(request.config)
