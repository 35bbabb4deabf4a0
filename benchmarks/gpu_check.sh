#!/usr/bin/env bash
# The GPU proof in one script, for a machine with an NVIDIA GPU: the gpu- and tensorrt-marked tests, then
# `imgx bench` of every registered model at FP32, FP16 and BF16 on eager and compile (and TensorRT when it is
# installed), each row with its parity against eager FP32 (max/mean absolute difference) and its NaN/Inf count.
# Everything lands in benchmarks/results/gpu-<host>-<date>/ with nvidia-smi's description of the device.
#
#   bash benchmarks/gpu_check.sh            # budget: about 8 minutes on one H100/H200-class GPU
#
# Settings (environment): PYTHON (default .venv/bin/python, else python3); IMGX_HOME (the model cache: a GPU
# machine without a network needs the weights there already: `imgx models pull` where there is one, then copy the
# cache over; IMGX_OFFLINE=1 is set here so nothing is fetched); GPU_CHECK_MODELS (default: every registered model);
# GPU_CHECK_SECONDS (per-model limit, default 60); GPU_CHECK_BACKENDS (default eager,compile, plus tensorrt when it is
# installed); GPU_CHECK_ALLOW_CPU=1 runs the same steps on the CPU at a tiny size (to try the script where there is no
# GPU: the results then say cpu and prove nothing about a GPU).
# Exit status: 0 when every step ran, 3 when no CUDA GPU is visible (and GPU_CHECK_ALLOW_CPU is not set), 1 when a
# test failed or a model's bench did not finish.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export IMGX_OFFLINE=1 PYTHONUNBUFFERED=1
started=$(date +%s)
status=0

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    device=cuda sizes=512 batches=4 repeats=10 warmup=3
elif [ "${GPU_CHECK_ALLOW_CPU:-0}" = 1 ]; then
    device=cpu sizes=64 batches=1 repeats=2 warmup=1
    echo "gpu_check: no CUDA GPU; GPU_CHECK_ALLOW_CPU=1, so the steps run on the CPU at ${sizes} px (no GPU evidence)"
else
    echo "gpu_check: no CUDA GPU is visible to torch $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)'); nothing was measured"
    exit 3
fi

out=benchmarks/results/gpu-$(hostname -s)-$(date -u +%Y%m%d)
[ "$device" = cpu ] && out=$out-cpu-trial
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi: not available"; } >"$out/device.csv"

backends=${GPU_CHECK_BACKENDS:-eager,compile}
if "$PY" -c 'import tensorrt' 2>/dev/null; then
    [ -n "${GPU_CHECK_BACKENDS:-}" ] || backends=$backends,tensorrt
else
    echo "gpu_check: TensorRT is not installed (pip install 'imgx[tensorrt]'): its rows will say so" | tee "$out/tensorrt.txt"
fi

echo "gpu_check: [1/2] gpu- and tensorrt-marked tests"
"$PY" -m pytest -m "gpu or tensorrt" -q -p no:cacheprovider -rs --junitxml="$out/tests.xml" tests 2>&1 | tee "$out/tests.log"
tests_status=${PIPESTATUS[0]}
if [ "$tests_status" -ne 0 ] && [ "$tests_status" -ne 5 ]; then  # 5: no test selected
    status=1
fi

models=${GPU_CHECK_MODELS:-$("$PY" -c 'import imgx; r = imgx.load_registry(); print(" ".join(sorted(n for n, e in r.models.items() if e.obj.build is not None)))')}
echo "gpu_check: [2/2] imgx bench on $device, backends $backends, models: $models"
for model in $models; do
    echo "gpu_check: bench $model"
    if ! timeout "${GPU_CHECK_SECONDS:-60}" "$PY" -m imgx bench --model "$model" --backends "$backends" \
        --precision fp32,fp16,bf16 --sizes "$sizes" --batch "$batches" --repeats "$repeats" --warmup "$warmup" \
        --device "$device" --out "$out/bench-$model.json" --no-chart >"$out/bench-$model.log" 2>&1; then
        echo "gpu_check: bench $model did not finish (see $out/bench-$model.log)"
        status=1
    fi
done

echo "gpu_check: done in $(($(date +%s) - started)) s; results in $out"
exit $status
