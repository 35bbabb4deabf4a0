"""A real two-node Ray cluster for the tests: a head and a second node started as separate ``ray start`` processes on
this machine, each with its own temp dir, one CPU and a resource of its own, so tasks land on both.

All the cluster's processes run in two process groups of their own, killed at the end; nothing else's Ray is
touched (``ray stop`` would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


@contextlib.contextmanager
def two_node_cluster(extra_env: Mapping[str, str] = {}) -> Iterator[tuple[str, dict[str, str]]]:
    """``(address, env)`` of a running head + second node; ``env`` (this process's environment plus the cluster's
    token and ``extra_env``, which the nodes and so their workers also get) is what a driver joining it needs."""
    if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its auth token once, at its import
        pytest.skip("Ray is not installed: pip install 'imgx[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra_env)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))  # this cluster's own token
    port = _free_port()
    # short: a node's unix sockets live under its temp dir, and socket paths are limited to 107 bytes
    root = Path(tempfile.mkdtemp(prefix="imgx-ray-", dir="/tmp"))
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    nodes = []
    try:
        head = [_ray(), "start", "--head", f"--port={port}", "--include-dashboard=false", *common]
        head += ['--resources={"imgx_test_head": 1}', f"--temp-dir={root / 'head'}"]
        nodes.append(
            subprocess.Popen(
                head, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        address = f"127.0.0.1:{port}"
        _wait_for_nodes(address, env, 1)
        second = [_ray(), "start", f"--address={address}", *common]
        second += ['--resources={"imgx_test_second": 1}', f"--temp-dir={root / 'second'}"]
        nodes.append(
            subprocess.Popen(
                second, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        _wait_for_nodes(address, env, 2)
        yield address, env
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _stop(node: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)  # raylets and workers left in the group
    node.wait(timeout=15)


def _wait_for_nodes(address: str, env: dict[str, str], count: int) -> None:
    probe = (
        f"import logging, ray; ray.init(address={address!r}, logging_level=logging.ERROR); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + 120
    last = "no probe finished"
    while time.monotonic() < deadline:
        time.sleep(2)
        try:
            result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:  # the head is not listening yet
            last = "the last probe timed out after 30 s"
            continue
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        last = f"the last probe exited {result.returncode}: {(result.stdout + result.stderr)[-1500:]}"
    pytest.fail(f"the Ray cluster at {address} did not reach {count} node(s); {last}")
