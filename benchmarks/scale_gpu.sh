#!/usr/bin/env bash
# The GPU figures issue 13 owes, in one call on a machine with CUDA (results land in $OUT, default ./gpu-out):
# the large-pool PANDA and device-batch tests on CUDA, PANDA's automatic scheme on a 1M-row pool (bf16),
# the quality check with the CUDA bf16 encoder, and the trainers' fit times at default vs large batches.
set -euo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
. .venv/bin/activate 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python -m pytest -q -p no:cacheprovider tests/test_panda_strategy_scale.py tests/test_scale_device_batch.py 2>&1 | tail -3 | tee "$OUT/tests.txt"
PYTHONPATH=. python benchmarks/scale.py --sizes 100000,1000000 --steps panda_rank_full,panda_rank_auto --out "$OUT/scale_gpu.md"
PYTHONPATH=. timeout 300 python benchmarks/panda_large_pool.py --seeds 5 && cp benchmarks/results/panda_large_pool.md "$OUT/panda_large_pool_cuda.md"
PYTHONPATH=. timeout 300 python benchmarks/device_batch.py --device cuda --seeds 3 --labels 400,2000 --out "$OUT/device_batch_cuda.md"
