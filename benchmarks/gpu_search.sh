#!/usr/bin/env bash
# The one GPU figure issue 9 still owes: PANDA's hyperparameter search with M > 1 tasks per step, full attention
# and 300 iterations per trial, on CUDA. One call on the device machine (about 6 minutes on an H200: 4 trials).
#
# Here, once (.whl/ is git-ignored), the wheels of benchmarks/gpu_check.sh plus Optuna's:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
#     -d .whl optuna==5.0.0 alembic colorlog sqlalchemy mako
# Then: run(command="bash benchmarks/gpu_search.sh", carry=[".whl"], timeout_s=480)
#
# The study stays in /tmp on the device (a trial's policy file per trial); its summary, the best trial's settings
# and history, and the study database come back in $OUT. `python -m fairal tune-policy --study study.db` here
# resumes or re-reads it.
TRIALS=${TRIALS:-4} ITERATIONS=${ITERATIONS:-300} M=${M:-64} LIMIT=${LIMIT:-420}
. benchmarks/device_env.sh gpu_search_log.txt
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
study=/tmp/gpu_search; mkdir -p "$study"
start=$SECONDS
# the study is resumable: trials cut off by the time limit are simply not counted
timeout "$LIMIT" python3 -m fairal tune-policy --dataset adult --trials "$TRIALS" --meta-batch "$M" --bf16 \
  --iterations "$ITERATIONS" --study "$study/study.db" --out "$study/tuned"
echo "=== rc=$? after $((SECONDS - start)) s"
for f in summary.md tuned.trial.json tuned.history.csv study.db; do [ -f "$study/$f" ] && cp "$study/$f" "$OUT/"; done
ls -la "$OUT"
