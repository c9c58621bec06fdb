#!/usr/bin/env bash
# Every GPU figure the project owes (issues 9 and 13), in ONE call on the device machine, most important first,
# each step under its own time limit so that a slow step cannot starve the rest (sum of limits: 520 s).
#
# Here, once (.whl/ is git-ignored; the device already has torch, numpy, pandas, scikit-learn, pytest, tqdm):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
#     -d .whl fairlearn==0.15.0 "sqlite-utils>=4,<5" sqlite-fts4 click-default-group "plotly>=6,<8" \
#     argon2-cffi argon2-cffi-bindings cffi pycparser
# Then: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=570)
#
# 1. the CUDA tests of PANDA's batched meta-training, block attention, large pools and device-sized batches;
# 2. PANDA meta-training speed against the meta-batch M on CUDA (fp32 and bf16), then the same machine's CPU;
# 3. PANDA ranking a 100k and a 1M pool (full attention and the automatic scheme) on CUDA;
# 4. the large-pool quality check with the CUDA encoder (3 seeds);
# 5. the robust trainers' fit time at default vs device-sized batches on CUDA (1 seed, 450 labels).
# Reports land in $OUT (default ./gpu-out).
. benchmarks/device_env.sh gpu_log.txt
step() { local limit=$1; shift; echo "=== $(date -u +%T) [$limit s] $*"; local t0=$SECONDS
  timeout "$limit" "$@"; echo "=== rc=$? after $((SECONDS - t0)) s"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, platform; print('torch', torch.__version__, 'python', platform.python_version(), 'cores', __import__('os').cpu_count())"
step 80 python3 -m pytest -q -p no:cacheprovider tests/test_panda_batched.py tests/test_panda_blocks.py \
  tests/test_panda_strategy_scale.py tests/test_scale_device_batch.py
step 140 python3 benchmarks/meta_training_speed.py --device cuda --batches 1,4,16,64 --learners head,erm --bf16 \
  --iterations 3 --out "$OUT/meta_training_speed_gpu.md"
step 70 python3 benchmarks/meta_training_speed.py --device cpu --batches 1,4,16 --learners head,erm \
  --iterations 3 --out "$OUT/meta_training_speed_gpu_machine_cpu.md"
step 60 python3 benchmarks/scale.py --sizes 100000,1000000 --steps panda_rank_full,panda_rank_auto --out "$OUT/scale_gpu.md"
step 80 python3 benchmarks/panda_large_pool.py --seeds 3 && cp benchmarks/results/panda_large_pool.md "$OUT/panda_large_pool_cuda.md"
step 90 python3 benchmarks/device_batch.py --device cuda --seeds 1 --labels 400 --out "$OUT/device_batch_cuda.md"
echo "=== done $(date -u +%T)"
