#!/usr/bin/env bash
# The prepared GPU check for PANDA's batched meta-training (issue 9): one call on the device machine.
#
# Here, once:   .venv/bin/pip download -q --no-deps -d .device-wheels fairlearn==0.15.0
#               (.device-wheels/ is git-ignored; the device has torch, numpy, pandas, scikit-learn, pytest, tqdm)
# Then:         run(command="bash benchmarks/gpu_check.sh", carry=[".device-wheels"], timeout_s=540)
#
# It runs the PANDA tests on CUDA and on the same machine's CPU, then the speed benchmark with the CPU and
# CUDA rows in one process, and leaves the report in $OUT/meta_training_speed_gpu.md.
set -euo pipefail
export PYTHONPATH=. PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q --no-deps .device-wheels/*.whl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
out="${OUT:-/tmp}"
python -m pytest -q -p no:cacheprovider tests/test_panda_batched.py tests/test_panda_blocks.py 2>&1 | tail -5
FAIRAL_DEVICE=cpu python -m pytest -q -p no:cacheprovider tests/test_panda_batched.py 2>&1 | tail -3
timeout 420 python benchmarks/meta_training_speed.py --device all --batches 1,4,16,64 --learners head,erm --bf16 \
    --iterations 5 --out "$out/meta_training_speed_gpu.md"
