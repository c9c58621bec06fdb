"""PANDA meta-training speed against the meta-batch M (tasks per meta-step), per device and inner learner.

Adult, PANDA split, the representation pretrained once on the meta-train half; MetaConfig's
defaults otherwise (pool 2,000, validation 3,000, B = 400, one encoder layer of width 32, the
"head" learner unrolled 50 steps, or the converged "erm" learner). Each row times ``--iterations``
meta-training iterations (forward step + proximal step, exactly what ``meta_train`` runs) after
one warm-up iteration, and reports iterations/s, tasks/s (= M · iterations/s), the tasks/s
speed-up over M = 1 on the same device, and CPU time beside wall time (the machine is shared).
``--device all`` runs the CPU and, when there is one, CUDA in one process, so the two are
measured on the same machine; ``--bf16`` adds rows with the encoder under bfloat16 autocast.

    PYTHONPATH=. python benchmarks/meta_training_speed.py            # CPU, writes results/meta_training_speed.md
    PYTHONPATH=. python benchmarks/meta_training_speed.py --device all --batches 1,4,16,64 --bf16 --out gpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairal.datasets import load_adult
from fairal.panda.train import (
    MetaConfig,
    _MetaStep,
    _new_policy,
    _TaskData,
    _Tasks,
    _train_iteration,
    prepare_meta_training,
)

OUT = Path(__file__).parent / "results" / "meta_training_speed.md"


def time_iterations(data_arrays, config: MetaConfig, device: torch.device, iterations: int) -> dict:
    features, y, groups, n_groups = data_arrays
    data = _TaskData(features, y, groups, n_groups, device)
    tasks = _Tasks(len(y), y, config, np.random.default_rng(0), torch.Generator().manual_seed(0), device)
    policy = _new_policy(config, data.inputs.shape[1], device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    step = _MetaStep(policy, data, config)
    batches = [tasks.batch(config.meta_batch) for _ in range(iterations + 1)]
    _train_iteration(step, optimizer, batches[0], config)  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    prox = 0
    for batch in batches[1:]:
        prox += _train_iteration(step, optimizer, batch, config)["prox_steps"]
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "it_per_s": iterations / wall,
            "tasks_per_s": iterations * config.meta_batch / wall, "prox_steps_per_it": prox / iterations}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--batches", default="1,2,4,8,16", help="meta-batch sizes M")
    parser.add_argument("--learners", default="head,erm")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per row")
    parser.add_argument("--bf16", action="store_true", help="also time the encoder under bfloat16 autocast")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] if args.device == "cpu" else [torch.device("cuda")]
    if args.device == "all":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    adult = load_adult()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    prepared = prepare_meta_training(adult, MetaConfig(), split_seed=0)
    arrays = (prepared.features, prepared.y, prepared.group_codes, prepared.n_groups)
    rows = []
    for device in devices:
        for learner in args.learners.split(","):
            for bf16 in ([False, True] if args.bf16 else [False]):
                for m in (int(b) for b in args.batches.split(",")):
                    config = replace(MetaConfig(), meta_batch=m, inner_learner=learner, bf16=bf16)
                    result = time_iterations(arrays, config, device, args.iterations)
                    rows.append({"device": device.type, "learner": learner, "bf16": bf16, "M": m, **result})
                    print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    base = frame[frame["M"] == 1].set_index(["device", "learner", "bf16"])["tasks_per_s"]
    frame["speed_up_vs_M1"] = [r.tasks_per_s / base.get((r.device, r.learner, r.bf16), np.nan)
                               for r in frame.itertuples()]
    write_report(frame, args, time.perf_counter() - start_wall, time.process_time() - start_cpu)


def write_report(frame: pd.DataFrame, args, wall: float, cpu: float) -> None:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    lines = [
        "# PANDA meta-training speed against the meta-batch M",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/meta_training_speed.py {' '.join(os.sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} torch threads, GPU: {gpu}. Whole run "
        f"{wall:.0f} s wall, {cpu:.0f} s CPU (including pretraining the representation).",
        "",
        "Adult meta-train half, MetaConfig defaults (pool 2,000, validation 3,000, B = 400, width 32, 1 layer; "
        f"head: 50 unrolled steps; erm: Newton to convergence + implicit gradient). {args.iterations} timed "
        "iterations per row after one warm-up; an iteration is the forward step plus the proximal step "
        "(up to 3 more passes while the tasks violate ρ).",
        "",
        frame.to_markdown(index=False, floatfmt=".3g"),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
