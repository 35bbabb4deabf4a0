"""How right is ``imgx run``'s ETA? Real runs through :func:`imgx.runner.run_recipe`, the progress ETA sampled
every 0.25 s and compared with the time the run really had left (issue 17: right within 20 % after the first 5 % of
items).

A reporter that shows nothing records, at every sample, the items done and :attr:`imgx.progress.Throughput.eta`;
after the run, each sample's true time left is the run's end less the sample's time. Errors are
``(eta - true) / true`` for samples from 5 % to 95 % of the items processed, and from 5 % to 80 % (near the end one
round of batches is a large part of what is left, and when the last ones land within that round no rate can know);
a sample with no ETA yet counts as a miss.

Scenarios (each over a catalog made from ``imgx demo-catalog``'s 21 images, in a temporary folder):

- ``steady``: the demo's stages (``color.enhance`` -> ``geometry.fit`` 1024) over the 21 images copied 12 times
  (252 items), 2 workers, batches of 8: items of similar cost.
- ``mixed``: the steady recipe over a costly-first catalog: the 21 images copied ``--copies`` times, the first
  quarter of the copies enlarged to a long side of 3000 px (about 20x the pixels, decoded, enhanced and fitted
  first), the rest as they are; 2 workers, batches of 8. Long enough (tens of seconds) that the batches' granularity
  does not decide the score, unlike ``restore``'s 6 results.
- ``restore``: ``recipes/restore-lowres.yaml``'s stages (``restore.denoise`` sigma auto -> ``gan.upscale`` 4x below
  640 px, tiles of 256 -> ``geometry.fit`` 1024), 1 worker, batches of 4, over the 21 images with the 12 product
  shots shrunk to a long side of 160 px (short enough for this 2-core machine; upscaled) and the 9 photos of 640 px
  (passed through): costly items first, cheap ones after, as in the issue's run.

``--root DIR`` measures another source tree (``git archive <commit> engine plugins | tar -x -C DIR``), so before
and after run in one session. Run it with ``nice`` on the shared VM; it writes
``benchmarks/results/eta-<host>-<date>.json`` with the machine::

    nice .venv/bin/python benchmarks/bench_eta.py --scenarios steady,restore
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# --root DIR: measure another imgx source tree (its engine/ and plugins/), e.g. an export of the commit before a change
ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve() if "--root" in sys.argv else REPO
sys.path[:0] = [str(ROOT / "engine"), str(ROOT / "plugins")]

from imgx.machine import machine_info  # noqa: E402
from imgx.progress import Reporter  # noqa: E402
from imgx.runner import RunOptions, run_recipe  # noqa: E402

SAMPLE_EVERY = 0.25
WINDOW = (0.05, 0.95)  # the share of items processed between which the ETA is judged
TOLERANCE = 0.20
COPIES = 12  # steady, mixed: the demo images copied this many times (--copies)
LARGE_SIDE = 3000  # mixed: the long side of the costly first quarter


class EtaRecorder(Reporter):
    """Shows nothing; samples ``(seconds since start, items done, ETA)`` every :data:`SAMPLE_EVERY` s and at each
    result."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.samples: list[tuple[float, int, float | None]] = []
        self.results: list[tuple[float, int]] = []
        self.measured: list[dict[str, Any]] = []
        self.seed: dict[str, Any] = {}
        self._sampling = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0

    def start(self, total: int, description: str, **seed: Any) -> None:
        super().start(total, description, **seed)  # workers, expected, work: what the runner under test passes
        self.seed = {"total": total, **seed}
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._sample_loop, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        meter = self.meter
        if meter is not None:
            self.samples.append((time.monotonic() - self.t0, meter.done, meter.eta))

    def _sample_loop(self) -> None:
        while not self._sampling.wait(SAMPLE_EVERY):
            self._sample()

    def advance(self, images: int, failed: int, **measured: Any) -> None:
        super().advance(images, failed, **measured)  # seconds, work per node: what the runner under test passes
        assert self.meter is not None
        self.results.append((time.monotonic() - self.t0, self.meter.done))
        self.measured.append({"images": images, "failed": failed, **measured})  # to replay the ETA rule offline
        self._sample()

    def stop(self) -> None:
        self._sampling.set()
        if self._thread is not None:
            self._thread.join()
        super().stop()


def judge(samples: list[tuple[float, int, float | None]], total: int, end: float, upto: float) -> dict[str, Any]:
    """Relative ETA errors of the samples taken from 5 % to ``upto`` of the ``total`` items processed."""
    errors: list[float] = []
    missing = 0
    for t, done, eta in samples:
        if not WINDOW[0] * total <= done <= upto * total:
            continue
        left = end - t
        if left <= 0:
            continue
        if eta is None:
            missing += 1
            continue
        errors.append((eta - left) / left)
    judged = len(errors) + missing
    within = sum(abs(e) <= TOLERANCE for e in errors)
    return {
        "samples_judged": judged,
        "samples_without_eta": missing,
        "share_within_20pct": round(within / judged, 3) if judged else None,
        "max_abs_error": round(max(map(abs, errors)), 3) if errors else None,
        "median_abs_error": round(statistics.median(map(abs, errors)), 3) if errors else None,
        "worst_overestimate": round(max(errors), 3) if errors else None,
        "worst_underestimate": round(min(errors), 3) if errors else None,
    }


def build_catalog(kind: str, folder: Path, copies: int) -> Path:
    """The scenario's catalog, made from ``imgx demo-catalog``'s images."""
    from PIL import Image

    from imgx.samples import build_demo_catalog

    demo = folder / "demo"
    if not demo.exists():
        build_demo_catalog(demo)
    images = sorted(p for p in demo.rglob("*.jpg") if "_truth" not in p.parts)
    catalog = folder / f"catalog-{kind}-{copies}"
    if catalog.exists():
        return catalog
    catalog.mkdir(parents=True)
    if kind == "steady":
        for copy in range(copies):
            for path in images:
                Image.open(path).save(catalog / f"c{copy:03d}-{path.parent.name}-{path.stem}.jpg", quality=92)
    elif kind == "mixed":
        costly = max(1, copies // 4)
        for copy in range(copies):
            for path in images:
                image = Image.open(path).convert("RGB")
                if copy < costly:  # sorted first: "a" before "b"
                    ratio = LARGE_SIDE / max(image.size)
                    size = (round(image.width * ratio), round(image.height * ratio))
                    image.resize(size, Image.Resampling.BICUBIC).save(
                        catalog / f"a{copy:03d}-{path.parent.name}-{path.stem}.jpg", quality=92
                    )
                else:
                    image.save(catalog / f"b{copy:03d}-{path.parent.name}-{path.stem}.jpg", quality=92)
    else:
        for path in images:
            image = Image.open(path).convert("RGB")
            if path.parent.name == "products":  # costly: upscaled 4x
                image.thumbnail((160, 160), Image.Resampling.LANCZOS)
            image.save(catalog / f"{path.parent.name}-{path.stem}.jpg", quality=92)
    return catalog


def recipe_for(kind: str, catalog: Path, out: Path) -> dict[str, Any]:
    if kind in ("steady", "mixed"):
        execution = {"workers": 2, "batch_size": 8}
        stages = [
            {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "auto", "auto_contrast": True}},
            {"id": "square", "uses": "geometry.fit", "needs": ["enhanced"], "with": {"size": 1024}},
        ]
        outputs = ["square"]
    else:
        execution = {"workers": 1, "batch_size": 4, "backend": "auto", "precision": "fp32"}
        stages = [
            {"id": "denoised", "uses": "restore.denoise", "with": {"sigma": "auto"}},
            {
                "id": "upscaled",
                "uses": "gan.upscale",
                "needs": ["denoised"],
                "with": {"scale": 4, "only_below": 640, "tile": 256, "overlap": 16},
            },
            {"id": "catalog", "uses": "geometry.fit", "needs": ["upscaled"], "with": {"size": 1024}},
        ]
        outputs = ["catalog"]
    return {
        "version": 1,
        "name": f"eta-{kind}",
        "input": {"path": str(catalog), "pattern": "*.jpg"},
        "output": {"dir": str(out), "format": "jpeg", "quality": 90},
        "execution": {"executor": "local", "device": "cpu", **execution},
        "stages": stages,
        "outputs": outputs,
    }


def _plain(value: Any) -> Any:
    """``value`` with mappings as dicts and floats rounded to microseconds, for the JSON."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return round(value, 6) if isinstance(value, float) else value


def run_scenario(kind: str, folder: Path, copies: int) -> dict[str, Any]:
    import yaml

    catalog = build_catalog(kind, folder, copies)
    out = folder / f"out-{kind}-{time.time_ns()}"
    recipe = folder / f"{kind}.yaml"
    recipe.write_text(yaml.safe_dump(recipe_for(kind, catalog, out), sort_keys=False), encoding="utf-8")
    reporter = EtaRecorder()
    load = os.getloadavg()
    summary = run_recipe(recipe, RunOptions(), reporter)
    end = time.monotonic() - reporter.t0
    total = summary.items
    return {
        "scenario": kind,
        "copies": copies if kind != "restore" else None,
        "items": total,
        "workers": summary.workers,
        "seconds": round(summary.seconds, 2),
        "end_since_start": round(end, 2),
        "first_result_at": round(reporter.results[0][0], 2) if reporter.results else None,
        "load_average_before": list(load),
        "load_average_after": list(os.getloadavg()),
        "stage_seconds": {k: round(v, 2) for k, v in summary.stage_seconds.items()},
        "eta_5_to_95pct": judge(reporter.samples, total, end, WINDOW[1]),
        "eta_5_to_80pct": judge(reporter.samples, total, end, 0.80),
        "results": [(round(t, 2), done) for t, done in reporter.results],
        "start": _plain(reporter.seed),
        "measured": _plain(reporter.measured),
        "samples": [(round(t, 2), done, None if eta is None else round(eta, 1)) for t, done, eta in reporter.samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="steady,restore", help="comma-separated: steady, mixed, restore")
    parser.add_argument("--copies", type=int, default=COPIES, help="steady, mixed: copies of the demo's 21 images")
    parser.add_argument("--work", type=Path, default=None, help="folder for catalogs and outputs (default: a temp)")
    parser.add_argument("--label", default="", help="a name for this measurement (e.g. before, after)")
    parser.add_argument("--root", type=Path, default=REPO, help="the imgx source tree to measure (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/eta-<host>-<date>.json)")
    args = parser.parse_args()
    folder = args.work or Path(tempfile.mkdtemp(prefix="imgx-bench-eta-"))
    runs = []
    for kind in args.scenarios.split(","):
        result = run_scenario(kind, folder, args.copies)
        shown = {k: v for k, v in result.items() if k not in ("samples", "results", "start", "measured")}
        print(json.dumps(shown), flush=True)
        runs.append(result)
    out = args.out or REPO / "benchmarks" / "results" / f"eta-{socket.gethostname()}-{dt.date.today():%Y%m%d}.json"
    document: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"runs": []}
    document["runs"] += [{"label": args.label, "root": str(ROOT), **run} for run in runs]
    document["method"] = __doc__
    document["machine"] = machine_info("cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
