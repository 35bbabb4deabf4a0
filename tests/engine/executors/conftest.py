"""A real Ray, started once per test session for the ``ray`` tests, and the test plugins they use.

The cluster runs in a helper process (a driver that started a local Ray and waits); tests join it by address, as a
user joins a cluster with ``--address``, so the pytest process never forks with Ray's threads alive in it. Closing
the helper's stdin shuts the cluster down.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

_CLUSTER = textwrap.dedent(
    """
    import logging, sys
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.read()
    ray.shutdown()
    """
)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a 2-CPU Ray cluster shared by the session's ``ray`` tests."""
    # Ray >= 2.59 authenticates local clusters with a token; the session's drivers (this process, `imgx run`
    # subprocesses) present the same one, as a user sets RAY_AUTH_TOKEN to join a cluster.
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    saved = {name: os.environ.get(name) for name in token}
    os.environ.update(token)  # before Ray is imported here: it reads the token once
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'imgx[ray]'")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'imgx[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    helper = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    address = (helper.stdout.readline() if helper.stdout else "").strip()
    if not address:
        helper.kill()
        pytest.fail("the session's Ray cluster did not start")
    try:
        yield address
    finally:
        if helper.stdin:
            helper.stdin.close()
        try:
            helper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def model_plugin_dir(tmp_path: Path) -> Path:
    """A --plugins-dir with ``test.model``: a batchable, GPU-capable stage (CPU here) that loads its state once in
    ``__init__`` and records, per process, how often it was built and how many items it processed."""
    folder = tmp_path / "model-plugins"
    folder.mkdir()
    (folder / "model_stage.py").write_text(
        textwrap.dedent(
            '''
            """A model-like test stage: state built once per worker, batched calls, real image work."""
            import json
            import os
            from pathlib import Path

            import numpy as np
            from pydantic import Field

            import imgx


            class ModelParams(imgx.StageParams):
                log_dir: str = Field(description="Folder where each process records its builds and calls.")
                gain: float = Field(default=0.8, description="Multiplies the image (the 'model').")


            class Model(imgx.Stage):
                name = "test.model"
                Params = ModelParams
                summary = "Scale pixel values with a lookup table built in __init__ (a stand-in for model weights)."
                batchable = True
                device = "gpu"

                def __init__(self, params=None, context=None):
                    super().__init__(params, context)
                    self.table = np.clip(np.arange(256) * self.params.gain, 0, 255).astype(np.uint8)
                    self.log = Path(self.params.log_dir)
                    self.log.mkdir(parents=True, exist_ok=True)
                    with open(self.log / f"init-{os.getpid()}", "a") as handle:
                        handle.write(self.context.device + "\\n")

                def __call__(self, batch):
                    with open(self.log / f"calls-{os.getpid()}", "a") as handle:
                        handle.write(json.dumps([item.sku for item in batch]) + "\\n")
                    return [item.replace(image=self.table[item.image]) for item in batch]


            @imgx.hookimpl
            def imgx_stages():
                return [Model]
            '''
        )
    )
    return folder
