"""The one place that decides where torch code runs."""

from __future__ import annotations

import os

import torch

__all__ = ["default_device"]


def default_device() -> torch.device:
    """CUDA when it is available, else the CPU.

    ``FAIRAL_DEVICE`` (e.g. ``cpu``) overrides the choice, which keeps tests
    deterministic on a machine that has a GPU.
    """
    forced = os.environ.get("FAIRAL_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
