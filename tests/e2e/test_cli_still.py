"""llstudio still --contact-sheet through the command line."""

from __future__ import annotations


import pytest



pytestmark = pytest.mark.render


def test_cli_contact_sheet(tiny_toml, cli_env, tmp_path):
    import subprocess
    import sys

    from PIL import Image

    out = tmp_path / "sheet.png"
    proc = subprocess.run([sys.executable, "-m", "llstudio", "still", str(tiny_toml), "--contact-sheet", "3",
                           "-o", str(out), "--progress", "none"], capture_output=True, text=True, env=cli_env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size[0] > 400
    bad = subprocess.run([sys.executable, "-m", "llstudio", "still", str(tiny_toml), "--contact-sheet", "0"],
                         capture_output=True, text=True, env=cli_env, timeout=120)
    assert bad.returncode == 2 and "contact-sheet" in bad.stderr
