"""The package's shape: the dependency rule between stages (import-linter's contracts in pyproject.toml) and
functions short enough to read at once."""

from __future__ import annotations

import ast
import re

from importlinter import cli as importlinter

from conftest import REPO

PACKAGE = REPO / "llstudio"
LONGEST = 80  # lines; a longer function says why in a comment that starts with "# Long:"


def test_stages_import_only_the_stages_before_them():
    # Every contract of [tool.importlinter]: layers, the store behind the pipeline, cross-cutting modules apart,
    # pyvista/VTK in renderer/backend.py alone, no torch in the picture stages.
    assert importlinter.lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = lines[node.lineno - 1:node.end_lineno]
                if len(body) > LONGEST and not any(re.match(r"\s*# Long:", line) for line in body):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({len(body)} lines)")
    return found


def test_no_function_is_longer_than_a_screen_without_saying_why():
    assert long_functions() == []
