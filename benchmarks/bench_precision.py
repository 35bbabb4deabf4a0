"""BF16 on the CPU: how far each model's output moves from eager FP32 on real photos, and what BF16 buys in speed.

Two parts, one JSON (``--out``, default ``results/precision-<host>-<date>.json``) with the machine description (its
``cpu_bf16_flags`` lists the CPU's BF16/AMX flags):

- ``parity``: every registered model with a PyTorch module, eager FP32 against eager BF16 (and FP16 with
  ``--precisions``) on ``--photos`` of ``imgx bench``'s real photos at the model's first bench side, one photo at a
  time (a model with instance norm sees only its own image). Input in the model's value range (0..1 mapped linearly
  onto it). Per precision: the mean and max absolute difference over all photos, the worst photo's mean, and what
  ``execution.precision: auto`` resolves the model to on this CPU (from its ``ModelSpec.parity`` / ``tolerance``).
  These numbers are what ``ModelSpec.parity`` records.
- ``speed``: ``imgx bench`` (:func:`imgx.runtime.bench.run_bench`, interleaved timed repeats, parity against eager
  FP32 in the same run) of ``--speed-models`` over eager and ONNX Runtime at FP32 (``auto``'s FP32 pick on the CPU)
  and eager at BF16 (``auto``'s BF16 pick), plus ``--speed-backends``.

Run it with ``nice`` on a shared machine: ``nice .venv/bin/python benchmarks/bench_precision.py --help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = 1


def parity_of(spec: Any, module: Any, precisions: tuple[str, ...], photos: int, side: int) -> dict[str, Any]:
    """Eager FP32 against eager ``precisions`` on ``photos`` real photos of ``side`` px, one at a time."""
    import torch

    from imgx.runtime.base import BackendOptions
    from imgx.runtime.bench import BENCH_PHOTOS, bench_input
    from imgx.runtime.eager import EagerBackend
    from imgx.runtime.parity import compare

    low, high = spec.value_range
    batch = bench_input(side, photos, spec.in_channels)
    if spec.in_channels >= 3:
        batch[:, :3] = low + batch[:, :3] * (high - low)
    runners = {p: EagerBackend(module, BackendOptions(precision=p)) for p in ("fp32", *precisions)}
    for runner in runners.values():
        runner.load()
    result: dict[str, Any] = {"side": side, "photos": list(BENCH_PHOTOS[:photos])}
    per_photo: dict[str, list[dict[str, float | int]]] = {p: [] for p in precisions}
    for index in range(photos):
        x = batch[index : index + 1]
        with torch.inference_mode():
            reference = runners["fp32"].infer(x)
            for precision in precisions:
                per_photo[precision].append(compare(reference, runners[precision].infer(x)))
    for precision, rows in per_photo.items():
        result[precision] = {
            "mean_abs": float(sum(r["mean_abs"] for r in rows) / len(rows)),
            "worst_photo_mean_abs": max(float(r["mean_abs"]) for r in rows),
            "max_abs": max(float(r["max_abs"]) for r in rows),
            "nonfinite": sum(int(r["nonfinite"]) for r in rows),
            "per_photo_mean_abs": [round(float(r["mean_abs"]), 6) for r in rows],
        }
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="models for the parity part (default: every one with a module)")
    parser.add_argument("--no-parity", action="store_true", help="skip the parity part (time only)")
    parser.add_argument("--precisions", default="bf16", help="precisions compared with FP32 (default bf16)")
    parser.add_argument("--photos", type=int, default=4, help="real photos per model (default 4, at most 7)")
    parser.add_argument("--speed-models", default="multistyle26,realesrgan_x4plus", help="models timed ('' for none)")
    parser.add_argument("--speed-sizes", default="multistyle26:1024,realesrgan_x4plus:128", help="MODEL:SIDE,...")
    parser.add_argument("--speed-backends", default="", help="more backends to time at FP32 and BF16 (compile)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per configuration (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from imgx.machine import cpu_flags, machine_info
    from imgx.models import load_module
    from imgx.registry import PluginConfig, load_registry
    from imgx.runtime.bench import BenchOptions, run_bench

    registry = load_registry(PluginConfig(autoload=True))
    machine = machine_info("cpu")
    flags = cpu_flags()
    machine["cpu_bf16_flags"] = sorted(f for f in flags if "bf16" in f or f.startswith("amx"))
    precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    names = [n.strip() for n in args.models.split(",") if n.strip()] or [
        name for name, entry in registry.models.items() if entry.obj.build is not None
    ]
    if args.no_parity:
        names = []
    parity: dict[str, Any] = {}
    for name in names:
        spec = registry.get_model(name)
        start = time.perf_counter()
        module = load_module(spec, registry=registry)
        side = max(spec.stride, spec.bench_sides[0])
        parity[name] = parity_of(spec, module, precisions, min(args.photos, 7), side)
        parity[name]["auto"] = dict(zip(("precision", "why"), spec.precision_for("auto"), strict=True))
        parity[name]["declared"] = {"precisions": list(spec.precisions), "tolerance": spec.tolerance}
        parity[name]["seconds"] = round(time.perf_counter() - start, 1)
        row = " ".join(
            f"{p} mean {parity[name][p]['mean_abs']:.2e} max {parity[name][p]['max_abs']:.3f}" for p in precisions
        )
        print(f"{name:<18} {side:>5}px {row}  auto -> {parity[name]['auto']['precision']}", flush=True)
        del module

    speed: dict[str, Any] = {}
    sizes = dict(item.split(":") for item in args.speed_sizes.split(",") if item)
    extra = tuple(b.strip() for b in args.speed_backends.split(",") if b.strip())
    for name in [n.strip() for n in args.speed_models.split(",") if n.strip()]:
        options = BenchOptions(
            model=name,
            backends=("eager", "onnxruntime", *extra),
            sizes=(int(sizes.get(name, 0)),) if name in sizes else (),
            precisions=("fp32", "bf16"),
            repeats=args.repeats,
            warmup=1,
            device="cpu",
        )
        report = run_bench(options, registry, log=lambda line: print(f"  {line}", flush=True))
        speed[name] = {"parameters": report["parameters"], "rows": report["rows"]}
        for row in report["rows"]:
            if row.get("status", "ok") == "ok":
                print(
                    f"{name:<18} {row['backend']:<12} {row['precision']} {row['size']}px "
                    f"median {row['median_seconds']} s speed-up {row.get('speedup_vs_eager_fp32')} "
                    f"mean diff {row.get('parity', {}).get('mean_abs') if row.get('parity') else None}",
                    flush=True,
                )
    result = {
        "schema": SCHEMA,
        "benchmark": "precision",
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "load_average_after": list(os.getloadavg()),
        "parameters": {"precisions": list(precisions), "photos": args.photos, "repeats": args.repeats},
        "parity": parity,
        "speed": speed,
    }
    default = f"precision-{socket.gethostname()}-{dt.date.today():%Y%m%d}.json"
    out = args.out or REPO / "benchmarks" / "results" / default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
