"""Reading and writing around the stages: a batch's remote sources are fetched several at a time (a real HTTP server
on loopback holds every request until the batch's requests are all in flight, or a while, and counts how many are in
flight at once, while a run reads a manifest of URLs, one of them missing), and an output that cannot be written fails
its row alone."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from _support import basic_recipe, real_photo, write_recipe
from imgx.executors.processor import IO_THREADS
from imgx.ledger import read_ledger
from imgx.runner import RunOptions, run_recipe

HOLD_SECONDS = 1.0  # each response waits this long, so requests sent one after another would never overlap
GATHER_SECONDS = 15.0  # how long a request waits for the server's ``gather`` requests to be in flight at once: a
# fixed hold alone (0.3 s, then 1 s) saw 6 or 7 of 8 requests sent together when the machine was loaded


class _Counting(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, photos: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.photos = photos
        self.lock = threading.Lock()
        self.gathered = threading.Condition(self.lock)
        self.gather = 1  # requests answer once this many have been in flight at once (or after GATHER_SECONDS)
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Counting

    def do_GET(self) -> None:
        server = self.server
        with server.gathered:
            server.in_flight += 1
            server.requests += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
            server.gathered.notify_all()
            server.gathered.wait_for(lambda: server.most_in_flight >= server.gather, timeout=GATHER_SECONDS)
        try:
            threading.Event().wait(HOLD_SECONDS)
            body = server.photos.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def photo_server() -> Iterator[_Counting]:
    photos = {}
    for name in ("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china"):
        buffer = io.BytesIO()
        Image.fromarray(real_photo(name, 128)).save(buffer, "JPEG", quality=90)
        photos[f"{name}.jpg"] = buffer.getvalue()
    server = _Counting(photos)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("batch_size", [8, 1], ids=["batch-of-8", "one-per-batch"])
def test_a_batch_fetches_its_remote_sources_together(photo_server: _Counting, tmp_path: Path, batch_size: int) -> None:
    base = f"http://127.0.0.1:{photo_server.server_address[1]}"
    names = [*photo_server.photos, "missing.jpg"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("sku,image\n" + "".join(f"sku-{i},{base}/{name}\n" for i, name in enumerate(names)))
    recipe = basic_recipe(tmp_path, tmp_path / "out", workers=1, batch_size=batch_size, device="cpu")
    recipe["input"] = {"path": str(manifest), "allowed_hosts": ["127.0.0.1"]}
    if batch_size > 1:  # the requests sent together are answered once all of them are in flight
        photo_server.gather = min(IO_THREADS, 8)
    summary = run_recipe(write_recipe(tmp_path, recipe), RunOptions())

    assert summary.items == 8 and summary.items_done == 7 and summary.items_failed == 1
    rows = {(row["sku"], row["output"]): row for row in read_ledger(tmp_path / "out").to_pylist()}
    missing = rows["sku-7", "square"]
    assert missing["status"] == "failed" and missing["stage"] == "read" and "missing.jpg" in missing["error"]
    assert all(row["status"] == "ok" for (sku, _), row in rows.items() if sku != "sku-7")
    assert all((tmp_path / "out" / f"sku-{i}" / "square.png").is_file() for i in range(7))
    assert photo_server.requests == 8  # each source fetched once
    if batch_size == 1:
        assert photo_server.most_in_flight == 1  # a batch of one has nothing to fetch beside it
    else:
        assert photo_server.most_in_flight == min(IO_THREADS, 8)


def test_an_output_that_cannot_be_written_fails_its_row_alone(tmp_path: Path) -> None:
    """A write that fails (a folder where the file should go) fails that output's row at ``write`` with the reason;
    the item's other output and the other items are written and journaled."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for i, name in enumerate(("coffee", "astronaut", "chelsea")):
        Image.fromarray(real_photo(name, 128)).save(catalog / f"sku-{i}.jpg", quality=90)
    out = tmp_path / "out"
    (out / "sku-1" / "square.png").mkdir(parents=True)
    summary = run_recipe(write_recipe(tmp_path, basic_recipe(catalog, out, batch_size=3, device="cpu")), RunOptions())
    assert summary.items_failed == 1
    rows = {(row["sku"], row["output"]): row for row in read_ledger(out).to_pylist()}
    failed = rows["sku-1", "square"]
    assert failed["status"] == "failed" and failed["stage"] == "write" and "could not write" in failed["error"]
    assert failed["path"] == "" and failed["duration_ms"] > 0
    assert rows["sku-1", "enhanced"]["status"] == "ok" and (out / "sku-1" / "enhanced.png").is_file()
    assert [rows[f"sku-{i}", "square"]["status"] for i in (0, 2)] == ["ok", "ok"]
