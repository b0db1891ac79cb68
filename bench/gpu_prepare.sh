#!/usr/bin/env bash
# Prepare .gpu/ (git-ignored) for bench/gpu_suite.sh, on this CPU machine, which reaches the
# package registries; the GPU machine reaches nothing and starts bare.
#
#   bash bench/gpu_prepare.sh            # then, on the GPU machine, with .gpu carried:
#   bash bench/gpu_suite.sh
#
# .gpu/whl    cp312 wheels of npfm's run-time needs that the GPU image lacks (its python3
#             is 3.12 with torch, triton, numpy, pyarrow, pyyaml, safetensors, pytest)
# .gpu/site   mamba_ssm's Triton SSD kernels (pure Python + Triton JIT, no CUDA build),
#             unpacked from the mamba-ssm source distribution on PyPI
# .gpu/corpus a small simulated sPHENIX p+p 200 GeV corpus for the pretraining check
set -euo pipefail
cd "$(dirname "$0")/.."
NPFM=${NPFM:-.venv/bin/npfm}
PIP=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl)
MAMBA_SSM=${MAMBA_SSM:-2.3.2.post1}
rm -rf .gpu && mkdir -p .gpu/whl .gpu/site .gpu/tmp
py() { .venv/bin/python -c "import $1 as m; print(m.__version__)"; }
"${PIP[@]}" "pydantic==$(.venv/bin/python -c 'import pydantic; print(pydantic.VERSION)')" \
  "pydantic-core==$(py pydantic_core)" annotated-types typing-inspection \
  "pythia8mc==8.317.2" "prov==$(py prov)"
(cd .gpu/tmp && curl -fsSLO "$(python3 - "$MAMBA_SSM" <<'PY'
import json, sys, urllib.request
releases = json.load(urllib.request.urlopen("https://pypi.org/pypi/mamba-ssm/json"))["releases"]
print(next(f["url"] for f in releases[sys.argv[1]] if f["filename"].endswith(".tar.gz")))
PY
)")
tar xzf .gpu/tmp/mamba_ssm-*.tar.gz -C .gpu/tmp
src=$(echo .gpu/tmp/mamba_ssm-*/mamba_ssm)
mkdir -p .gpu/site/mamba_ssm/ops
cp -r "$src/ops/triton" .gpu/site/mamba_ssm/ops/ && cp -r "$src/utils" .gpu/site/mamba_ssm/
cp "$src/../LICENSE" .gpu/site/mamba_ssm/ 2>/dev/null || true
# The package's own __init__ imports its CUDA extensions; the Triton kernels need none.
touch .gpu/site/mamba_ssm/__init__.py .gpu/site/mamba_ssm/ops/__init__.py
rm -rf .gpu/tmp
"$NPFM" simulate --detector sphenix --physics pp200 --events 400 --seed 1 --shard-events 100 --out .gpu/corpus
du -sh .gpu
