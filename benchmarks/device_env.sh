# Sourced by the device scripts (gpu_check.sh, gpu_search.sh): the environment on the device machine.
# Usage: . benchmarks/device_env.sh LOG_NAME  — $OUT (default ./gpu-out) made, all output also into $OUT/LOG_NAME,
# and the wheels carried in .whl/ installed into /tmp/site (the device has torch, numpy, pandas, scikit-learn,
# pytest and tqdm; nothing can be fetched there).
export PYTHONPATH=. PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/$1") 2>&1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=.:/tmp/site
fi
