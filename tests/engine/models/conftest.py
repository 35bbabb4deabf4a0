"""Fixtures for the model registry: a private cache, real weight files, a real loopback HTTP server."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ``IMGX_HOME``; the developer's ``IMGX_MODELS_PATH`` and ``IMGX_OFFLINE`` are cleared."""
    home = tmp_path / "imgx-home"
    monkeypatch.setenv("IMGX_HOME", str(home))
    monkeypatch.delenv("IMGX_MODELS_PATH", raising=False)
    monkeypatch.delenv("IMGX_OFFLINE", raising=False)
    return home


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class Weights:
    """A real weight file: the state dict of a small conv net (3 -> 8 -> 3 channels), saved with ``torch.save``."""

    path: Path
    sha256: str
    size: int
    module: object  # the torch module whose state dict the file holds


def small_net():
    """The architecture the weight file belongs to: ``(B, 3, H, W)`` float32 -> ``(B, 3, H, W)``."""
    import torch

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1), torch.nn.Sigmoid()
    )


def build_small_net(paths) -> object:
    """``ModelSpec.build`` for :func:`small_net`: strict load of the cached state dict."""
    import torch

    net = small_net()
    net.load_state_dict(torch.load(paths["weights"], weights_only=True), strict=True)
    return net


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Weights:
    import torch

    torch.manual_seed(7)
    module = small_net().eval()
    path = tmp_path_factory.mktemp("weights") / "small-net.pt"
    torch.save(module.state_dict(), path)
    data = path.read_bytes()
    return Weights(path, sha256_bytes(data), len(data), module)


@pytest.fixture
def make_spec(weights: Weights) -> Callable[..., object]:
    """``make_spec(*sources, name="small", sha256=weights.sha256)``: a :class:`ModelSpec` for the small net whose one
    file (role ``weights``, ``small-net.pt``) comes from ``sources``."""
    from imgx.models import ModelSpec, WeightFile

    def make(*sources: str, name: str = "small", sha256: str | None = None, filename: str = "small-net.pt"):
        weight = WeightFile(filename, sha256 or weights.sha256, tuple(sources), weights.size)
        return ModelSpec(name=name, files={"weights": weight}, build=build_small_net, licence="CC0-1.0")

    return make


@dataclasses.dataclass
class Server:
    """A loopback HTTP server over ``root``; ``requests`` counts GETs per path."""

    url: str
    root: Path
    requests: dict[str, int]


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: dict[str, int]
    delay: float = 0.0

    def do_GET(self) -> None:
        self.requests[self.path] = self.requests.get(self.path, 0) + 1
        if self.delay:
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(delay=0.0)`` starts a real ``http.server`` on 127.0.0.1 over a fresh folder, in a thread."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(delay: float = 0.0) -> Server:
        root = tmp_path / f"www{len(servers)}"
        root.mkdir()
        requests: dict[str, int] = {}
        handler = type("Handler", (_Handler,), {"requests": requests, "delay": delay})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Server(f"http://127.0.0.1:{server.server_address[1]}", root, requests)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
