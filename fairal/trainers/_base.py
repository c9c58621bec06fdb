"""The protocol every trainer follows, and the input handling they share."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from fairal.trainers.models import FittedModel

__all__ = ["Trainer", "as_arrays", "check_positive_int", "check_sample_weight", "classification_loss", "epoch_range",
           "BestEpoch"]


def epoch_range(n: int, trainer: Any, desc: str):
    """``range(n)`` with a progress bar when the trainer has ``progress=True`` (or ``FAIRAL_PROGRESS=1``)."""
    from tqdm.auto import tqdm

    show = bool(getattr(trainer, "progress", False)) or os.environ.get("FAIRAL_PROGRESS") == "1"
    return tqdm(range(n), desc=desc, unit="epoch", leave=False, disable=not show)


@runtime_checkable
class Trainer(Protocol):
    """Anything with ``fit(data, *, sample_weight=None, validation=None) -> FittedModel``.

    ``data`` and ``validation`` are a :class:`fairal.datasets.Dataset` or an
    ``(X, y)`` / ``(X, y, group)`` tuple. Trainers that use a clean validation
    or exemplar set (FR-Train, FORML) read it from ``validation``; ERM may use it
    for early stopping only.

    The contract every registered trainer keeps (``tests/test_trainer_contract.py``):

    * ``uses_validation``: ``fit`` reads ``validation=`` as a clean set, so
      projects pass it theirs (the seed set until a crowd set is built);
    * ``needs_validation``: with its default parameters ``fit`` refuses to run
      without one (a ValueError saying so); such trainers are also too slow to
      retrain inline after every label;
    * parameters are stored as given and checked by ``_check_params()`` at the
      start of ``fit``: a bad one raises ValueError naming it;
    * the returned model's typed extras are in ``model.details``
      (:class:`fairal.trainers.models.FitDetails`).
    """

    name: str
    uses_validation: bool
    needs_validation: bool

    def fit(self, data: Any, *, sample_weight=None, validation=None) -> FittedModel: ...


def as_arrays(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X float32, y int64, group or None)`` from a Dataset or a tuple, validated."""
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y, group = data.X, data.y, getattr(data, "group", None)
    elif isinstance(data, tuple) and len(data) in (2, 3):
        X, y = data[0], data[1]
        group = data[2] if len(data) == 3 else None
    else:
        raise TypeError(
            f"data must be a Dataset or an (X, y) or (X, y, group) tuple, got {type(data).__name__}"
        )
    X = np.asarray(X, dtype=np.float32)
    if not X.flags.writeable:  # cached datasets are read-only; torch wants its own buffer
        X = X.copy()
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (rows, features), got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError("cannot train on 0 examples")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    if y.dtype.kind not in "iub" or (y < 0).any():
        raise ValueError(f"y must hold class indices 0, 1, ..., got dtype {y.dtype}")
    return X, y.astype(np.int64), None if group is None else np.asarray(group)


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy: BCE on one logit (targets cast to the logits' dtype, so float64
    stays float64), softmax cross-entropy on several."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), y.to(logits.dtype), reduction="none")
    return F.cross_entropy(logits, y, reduction="none")


def check_positive_int(name: str, value) -> None:
    """Refuse anything but an integer >= 1 (bools included) with a ValueError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_sample_weight(sample_weight, n: int) -> np.ndarray | None:
    """``sample_weight`` as float32 of shape (n,), finite and non-negative (None stays None)."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float32)
    if weight.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {weight.shape}")
    if (weight < 0).any() or not np.isfinite(weight).all():
        raise ValueError("sample_weight must be finite and non-negative")
    return weight


class BestEpoch:
    """Early stopping's memory: the module's weights at the lowest validation score seen."""

    def __init__(self):
        self.score, self.state = float("inf"), None

    def update(self, module, score: float) -> None:
        if score < self.score:
            self.score = score
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def restore(self, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)
