"""The one place that decides where torch code runs, and how big a training step is there."""

from __future__ import annotations

import math
import os

import torch

__all__ = ["default_device", "fit_schedule", "LARGE_BATCH", "MIN_STEPS"]

#: On CUDA a trainer left at ``batch_size=None`` puts up to this many rows in one step.
LARGE_BATCH = 4096
#: ... and makes at least this many optimiser steps (more epochs when the data fit in few batches);
#: the check that sized it: ``benchmarks/device_batch.py`` (results/device_batch.md).
MIN_STEPS = 200


def default_device() -> torch.device:
    """CUDA when it is available, else the CPU.

    ``FAIRAL_DEVICE`` (e.g. ``cpu``) overrides the choice, which keeps tests
    deterministic on a machine that has a GPU.
    """
    forced = os.environ.get("FAIRAL_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit_schedule(n_rows: int, *, batch_size: int | None, default_batch: int, epochs: int,
                 device: torch.device | str, min_steps: int = MIN_STEPS) -> tuple[int, int]:
    """``(rows per step, epochs)`` for a trainer's fit of ``n_rows`` rows on ``device``.

    A ``batch_size`` given is used as given, on every device. ``None`` (the trainers' default)
    means the trainer's ``default_batch`` (the paper's) on the CPU, where small steps are cheap;
    on CUDA, steps of up to :data:`LARGE_BATCH` rows (all of them, for the live path's few thousand
    labels), with as many more epochs as it takes to make ``min_steps`` optimiser steps, never
    more steps than the default batch would make.
    """
    if batch_size is not None or torch.device(device).type != "cuda":
        return int(batch_size or default_batch), int(epochs)
    n_rows = max(1, int(n_rows))
    batch = min(n_rows, LARGE_BATCH)
    per_epoch, default_steps = math.ceil(n_rows / batch), int(epochs) * math.ceil(n_rows / default_batch)
    steps = min(default_steps, max(int(epochs) * per_epoch, int(min_steps)))
    return batch, max(int(epochs), math.ceil(steps / per_epoch))
