"""The installed ``imgx`` console script, run as a separate process: exit codes, streams, and the live progress bar
under a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _support import basic_recipe, write_recipe

pytestmark = pytest.mark.slow

IMGX = shutil.which("imgx", path=str(Path(sys.executable).parent)) or shutil.which("imgx")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture(scope="module")
def console_script() -> str:
    if IMGX is None:
        pytest.skip("the imgx console script is not installed (pip install -e .)")
    return IMGX


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("IMGX_PLUGINS", "IMGX_DISABLE_PLUGIN_AUTOLOAD")}
    return {**env, "COLUMNS": "200"}


def test_run_exits_0_and_writes_outputs(console_script, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    done = subprocess.run(
        [console_script, "run", str(recipe), "--set", "input.limit=3"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").rglob("enhanced.png"))) == 3
    assert len(list((tmp_path / "out").rglob("square.png"))) == 3
    assert done.stdout == ""
    assert re.search(r"│ ok\s*│\s*3 │\s*6 │", done.stderr)


def test_bad_recipe_exits_2_with_the_message_on_stderr(console_script, photo_catalog, tmp_path):
    body = basic_recipe(photo_catalog, tmp_path / "out")
    body["stages"][1]["uses"] = "geometry.fitt"
    recipe = write_recipe(tmp_path, body)
    done = subprocess.run(
        [console_script, "run", str(recipe)], capture_output=True, text=True, env=environment(), timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.match(
        rf"recipe error: {re.escape(str(recipe))}:\d+: stages\[1\]\.uses: got unknown stage 'geometry\.fitt'\. "
        r"Did you mean 'geometry\.fit'",
        done.stderr,
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def run_in_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; return its exit code and what it showed."""
    main, secondary = pty.openpty()
    env = {**environment(), "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child exited and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main)
        code = process.wait(timeout=30)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_progress_bar_counts_images_with_rate_eta_and_failures(console_script, photo_catalog, plugin_dir, tmp_path):
    body = basic_recipe(photo_catalog, tmp_path / "out", batch_size=2, max_failures=0.5)
    body["stages"] = [
        {"id": "inverted", "uses": "test.fail_on", "with": {"sku_contains": "food/"}},
        {"id": "slow", "uses": "test.slow", "needs": ["inverted"], "with": {"seconds": 0.1}},
    ]
    body["outputs"] = ["slow"]
    recipe = write_recipe(tmp_path, body)
    code, screen = run_in_terminal([console_script, "run", str(recipe), "--plugins-dir", str(plugin_dir)])
    assert code == 0, screen
    bars = re.findall(r"test [━╸╺ ]+\s+(\d+)/8 images ([\d.]+) img/s\s+ETA (\S+)\s+(\d+) failed", screen)
    assert bars, screen
    done, rate, eta, failed = bars[-1]
    assert (done, failed) == ("8", "4")
    assert float(rate) > 0
    assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s|\d+h\d\dm", eta)  # 1h02m, 4m05s, 12s
    assert re.search(r"│ ok\s*│\s*4 │", screen)

    quiet_code, quiet = run_in_terminal(
        [console_script, "run", str(recipe), "--plugins-dir", str(plugin_dir), "--no-progress"]
    )
    assert quiet_code == 0, quiet
    assert "img/s" not in quiet
    assert re.search(r"│ ok\s*│\s*4 │", quiet)
