#!/usr/bin/env bash
# The GPU checks of npfm in one script, under 8 minutes on one H100/H200-class GPU.
# Prepare on the CPU machine first (bash bench/gpu_prepare.sh writes .gpu/), then run on
# the GPU machine from the repository root with .gpu carried:
#
#   bash bench/gpu_suite.sh [OUT_DIR]
#
# 1. the Triton-vs-pure Mamba-2 equality test (tests/model/test_mamba2.py);
# 2. bf16 forward + backward TFLOP/s of m3-m5 against the measured matrix-product peak,
#    and peak memory (bench/gpu_throughput.py);
# 3. a short pretraining of the default objective, then the representation probe
#    (bench/gpu_pretrain_probe.py, configs/pretrain-gpu.yaml).
# Each stage has its own time limit, so the suite always reports; figures go to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench/out/gpu}}
mkdir -p "$out"
[ -d .gpu/whl ] || { echo "gpu_suite: .gpu/ missing; run bash bench/gpu_prepare.sh here and carry .gpu"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/npfm-site .gpu/whl/*.whl || exit 2
export PYTHONPATH="$PWD/src:$PWD:/tmp/npfm-site:$PWD/.gpu/site" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" \
  | tee -a "$out/gpu.txt"
status=0
echo "== 1. Triton scan against the pure-PyTorch scan"
timeout 120 python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  tests/model/test_mamba2.py -k fast_path -rs 2>&1 | tee "$out/equality.txt" || status=1
grep -q "1 passed" "$out/equality.txt" || { echo "equality test did not pass"; status=1; }
echo "== 2. bf16 throughput and memory"
timeout 150 python3 bench/gpu_throughput.py --models m3 m4 m5 --json "$out/throughput.json" \
  2>&1 | tee "$out/throughput.txt" || status=1
echo "== 3. short pretraining, then the probe"
timeout 240 python3 bench/gpu_pretrain_probe.py configs/pretrain-gpu.yaml \
  --out /tmp/npfm-gpu-run --corpus .gpu/corpus 2>&1 | tail -n 30 | tee "$out/pretrain_probe.txt"
[ "${PIPESTATUS[0]}" = 0 ] || {
  echo "pretraining stopped by its limit or failed; probing its last checkpoint";
  timeout 90 python3 -c "
from pathlib import Path
from npfm.tasks.probe import probe
r = probe(Path('/tmp/npfm-gpu-run'), Path('.gpu/corpus'))
print(r['checkpoint'], {k: round(v['value'], 3) for k, v in r['knn_purity'].items()})
print(r['pretraining_loss'])" 2>&1 | tee -a "$out/pretrain_probe.txt" || status=1; }
exit $status
