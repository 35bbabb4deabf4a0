"""``benchmarks/gpu_check.sh`` stays ready to run: where torch sees no CUDA GPU it measures nothing and says so
(exit 3); its steps are the same with GPU_CHECK_ALLOW_CPU=1 (run here on one small model)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from _support import REPO, default_registry
from imgx.models import ensure_files, get_spec

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=900, check=False)


def test_without_a_gpu_it_says_so_and_measures_nothing() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: run benchmarks/gpu_check.sh itself")
    result = _run()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "gpu_check: no CUDA GPU is visible to torch" in result.stdout and "nothing was measured" in result.stdout


@pytest.mark.slow
def test_its_steps_run_end_to_end_on_the_cpu_when_asked(tmp_path) -> None:
    # the script fetches nothing (IMGX_OFFLINE=1, as on a GPU machine without a network): the weights are pulled here
    # first, as `imgx models pull zero_dce` would, so the test does not depend on another having run before it
    ensure_files(get_spec("zero_dce", default_registry()), registry=default_registry())
    # eager only: the CPU's compile builds packages ahead of time, which says nothing about CUDA's torch.compile
    result = _run(
        GPU_CHECK_ALLOW_CPU="1", GPU_CHECK_MODELS="zero_dce", GPU_CHECK_SECONDS="600", GPU_CHECK_BACKENDS="eager"
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        folder = REPO / result.stdout.strip().splitlines()[-1].split("results in ", 1)[1]
        assert folder.name.endswith("-cpu-trial")
        assert {p.name for p in folder.iterdir()} >= {"device.csv", "tests.xml", "bench-zero_dce.json"}
    finally:
        for line in result.stdout.splitlines():
            if "results in " in line:
                shutil.rmtree(REPO / line.split("results in ", 1)[1], ignore_errors=True)
