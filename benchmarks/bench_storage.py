"""Object storage against local disk: the same recipe over the same catalog, once with the catalog and ``output.dir``
in a folder and once in a bucket of an S3-compatible server on loopback, alternated in one session.

The server is moto's (``pip install -e '.[dev]'``), started by this script in a process of its own on 127.0.0.1: it
is a Python server, slower per request than S3 or MinIO, so the ratio is an upper bound on what the object-store path
(one GET per image, one PUT per output, ledger parts, listing, run marker) costs imgx itself, not a cloud figure.
Each run is ``python -m imgx run`` in a subprocess, timed from start to exit (start-up, catalog listing, the run,
compaction), as a catalog team runs it; the order alternates (local, s3, local, s3 ...) so drift hits both.

Example (what ``benchmarks/results/storage-*.json`` was made with)::

    python benchmarks/bench_storage.py --items 300 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ACCESS_KEY, SECRET_KEY, REGION = "bench-access-key", "bench-secret-key", "us-east-1"


def write_catalog(folder: Path, items: int, size: int) -> None:
    """``items`` JPEGs of ``size`` px: crops of scikit-image's real photos, in 10 category folders."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = [np.asarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    for index in range(items):
        photo = photos[index % len(photos)]
        rng = np.random.default_rng(index)
        side = min(photo.shape[0], photo.shape[1], 2 * size)
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size))
        target = folder / f"cat{index % 10}" / f"SKU-{index:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        crop.save(target, quality=90)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)


def s3_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def upload(client: Any, bucket: str, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*.jpg")):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())


def recipe(catalog: str, out: str, workers: int, size: int) -> str:
    return json.dumps(
        {
            "version": 1,
            "name": "bench-storage",
            "input": {"path": catalog, "pattern": "**/*.jpg"},
            "output": {"dir": out, "format": "webp", "quality": 85, "naming": "{sku}/{output}.{ext}"},
            "execution": {"workers": workers, "batch_size": 8},
            "stages": [
                {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "gray_world"}},
                {"id": "square", "uses": "geometry.fit", "needs": ["enhanced"], "with": {"size": size // 2}},
            ],
            "outputs": ["enhanced", "square"],
        }
    )


def timed_run(recipe_path: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "imgx", "run", str(recipe_path), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"imgx run failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def count_outputs(client: Any, bucket: str, out: str) -> int:
    """The ``.webp`` objects under the ``s3://bucket/prefix`` of ``out``."""
    prefix = out.removeprefix(f"s3://{bucket}/") + "/"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(obj["Key"].endswith(".webp") for page in pages for obj in page.get("Contents", []))


def request_cost(endpoint: str, bucket: str, size: int, count: int = 100) -> dict[str, float]:
    """Milliseconds per PUT and per GET of an image-sized object through pyarrow.fs on this server, serial."""
    import pyarrow.fs as pafs

    host = endpoint.removeprefix("http://")
    store = pafs.S3FileSystem(
        endpoint_override=host,
        scheme="http",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        allow_delayed_open=True,
    )
    data = os.urandom(size * size)  # about one encoded output
    start = time.perf_counter()
    for index in range(count):
        with store.open_output_stream(f"{bucket}/probe/{index}") as stream:
            stream.write(data)
    put = time.perf_counter() - start
    start = time.perf_counter()
    for index in range(count):
        with store.open_input_file(f"{bucket}/probe/{index}") as file:
            file.read_at(file.size(), 0)
    get = time.perf_counter() - start
    return {"put": 1000 * put / count, "get": 1000 * get / count}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="also run the object-store case from this checkout of imgx (a git worktree of an earlier commit: its "
        "engine/ and plugins/ go first on PYTHONPATH), so a before/after pair shares one session",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (default: results/storage-<host>-<date>)")
    args = parser.parse_args(argv)

    import boto3

    work = Path(tempfile.mkdtemp(prefix="imgx-bench-storage-"))
    catalog = work / "catalog"
    write_catalog(catalog, args.items, args.size)
    port = free_port()
    server = start_server(port)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )
    bucket = f"imgx-bench-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    upload(client, bucket, catalog, "catalog")
    env = s3_env(endpoint)
    envs = {"local": env, "s3": env}
    if args.baseline_tree is not None:
        tree = args.baseline_tree.resolve()
        path = os.pathsep.join([str(tree / "engine"), str(tree / "plugins"), env.get("PYTHONPATH", "")])
        envs["s3 baseline"] = {**env, "PYTHONPATH": path.rstrip(os.pathsep)}
    seconds: dict[str, list[float]] = {kind: [] for kind in envs}
    try:
        for repeat in range(args.repeats):
            for kind, kind_env in envs.items():
                remote = kind.startswith("s3")
                tag = f"{kind.replace(' ', '-')}-{repeat}"
                out = f"s3://{bucket}/out-{tag}" if remote else str(work / f"out-{repeat}")
                source = f"s3://{bucket}/catalog" if remote else str(catalog)
                path = work / f"recipe-{tag}.yaml"
                path.write_text(recipe(source, out, args.workers, args.size))
                seconds[kind].append(timed_run(path, kind_env))
                written = count_outputs(client, bucket, out) if remote else len(list(Path(out).rglob("*.webp")))
                if written != 2 * args.items:
                    raise SystemExit(f"{kind} run {repeat + 1} wrote {written} outputs, not {2 * args.items}")
                print(f"{kind:5} run {repeat + 1}: {seconds[kind][-1]:.2f} s", flush=True)
        request_ms = request_cost(endpoint, bucket, args.size)
    finally:
        server.terminate()
        server.wait(timeout=30)
    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    local, s3 = medians["local"], medians["s3"]
    result: dict[str, Any] = {
        "benchmark": "storage",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "items": args.items,
        "image_px": args.size,
        "outputs_per_item": 2,  # every run's outputs are counted after it: a short count stops the benchmark
        "workers": args.workers,
        "server": "moto (python -m moto.server) on 127.0.0.1, its own process",
        "seconds": seconds,
        "median_seconds": medians,
        "items_per_second": {kind: args.items / median for kind, median in medians.items()},
        "s3_over_local_time": s3 / local,
        "server_request_ms": request_ms,
        "note": "server_request_ms: one PUT / GET of an image-sized object through pyarrow.fs, serial, measured on the "
        "same server after the runs; each item costs one GET and two PUTs, so moto's own request time accounts for "
        "most of the gap",
    }
    if args.baseline_tree is not None:
        result["baseline_tree"] = str(args.baseline_tree)
        result["s3_baseline_over_s3_time"] = medians["s3 baseline"] / s3
    from imgx.machine import machine_info

    result["machine"] = machine_info("cpu")
    target = args.out or REPO / "benchmarks" / "results" / f"storage-vm-{dt.date.today():%Y%m%d}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("items_per_second", "s3_over_local_time", "server_request_ms")}, indent=2))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
