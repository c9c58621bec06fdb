"""The few-step linear head: PANDA's inner learner, usable as an ordinary trainer.

PANDA meta-trains its policy through a learner that runs a few full-batch
gradient steps of a linear head from zero (:func:`fairal.panda.inner.train_head`).
Parity learned through one learner may not transfer to another, so the same
learner must be available at evaluation time and in the app: this trainer
is exactly that function with hard (0/1) weights.
"""

from __future__ import annotations

from typing import cast

import torch

from fairal.panda.inner import init_head, train_head
from fairal.trainers import register
from fairal.trainers._base import as_arrays, check_positive_int, check_sample_weight
from fairal.trainers.device import default_device
from fairal.trainers.models import FittedModel, LogisticRegression, make_model

__all__ = ["HeadTrainer"]


class HeadTrainer:
    """``steps`` gradient steps at ``lr`` on the (weighted) mean BCE of a zero-initialised linear head."""

    name = "head"
    uses_validation = False
    needs_validation = False

    def __init__(self, *, steps: int = 50, lr: float = 0.5, l2: float = 1e-3,
                 device: str | torch.device | None = None):
        self.steps = steps
        self.lr = lr
        self.l2 = l2
        self.device = device

    def _check_params(self) -> None:
        check_positive_int("steps", self.steps)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be non-negative, got {self.l2!r}")

    def fit(self, data, *, sample_weight=None, validation=None) -> FittedModel:
        self._check_params()
        X, y, _ = as_arrays(data)
        if y.max(initial=0) > 1:
            raise ValueError("HeadTrainer is binary: y must hold 0/1 labels")
        device = torch.device(self.device) if self.device is not None else default_device()
        features = torch.as_tensor(X, device=device)
        checked = check_sample_weight(sample_weight, len(X))
        weights = (torch.ones(len(X), device=device) if checked is None
                   else torch.as_tensor(checked, device=device))
        params = train_head(init_head(X.shape[1], device=device), features,
                            torch.as_tensor(y, dtype=torch.float32, device=device), weights,
                            steps=self.steps, lr=self.lr, l2=self.l2)
        module = cast(LogisticRegression, make_model("logistic", X.shape[1]))
        with torch.no_grad():
            module.linear.weight.copy_(params["weight"].reshape(1, -1))
            module.linear.bias.copy_(params["bias"].reshape(1))
        architecture = {"kind": "logistic", "n_features": X.shape[1], "n_classes": 2, "hidden": []}
        return FittedModel(module.to(device), architecture=architecture,
                           info={"learner": "head", "steps": self.steps, "lr": self.lr, "l2": self.l2})


register("head", HeadTrainer)
