"""llstudio still through the command line: the scene's own still (output.still), --frame, --contact-sheet."""

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


def test_cli_still_shows_the_scenes_still_unless_told_a_frame(tiny_toml, cli_env):
    """Without --frame the still is output.still's frame (its number names the default PNG); --frame wins."""
    import subprocess
    import sys

    from PIL import Image

    from llstudio.config.scene import load_scene
    from llstudio.pipeline import still_index

    tiny_toml.write_text(tiny_toml.read_text().replace('[output]\n', '[output]\nstill = 0.5\n'))
    home = tiny_toml.parent.parent
    index = still_index(load_scene(tiny_toml), None, "l")
    assert 0 < index < still_index(load_scene(tiny_toml), -1, "l")

    def still(*args):
        proc = subprocess.run([sys.executable, "-m", "llstudio", "still", "scenes/tiny.toml", *args,
                               "--progress", "none"], capture_output=True, text=True, env=cli_env, cwd=home,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert still() == f"renders/tiny_{index:05d}.png"
    assert still("--frame", "2") == "renders/tiny_00002.png"
    with Image.open(home / f"renders/tiny_{index:05d}.png") as a, Image.open(home / "renders/tiny_00002.png") as b:
        assert a.size == b.size == (854, 480) and a.tobytes() != b.tobytes()
