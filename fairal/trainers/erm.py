"""Empirical risk minimisation: the plain (fairness-unaware) trainer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import torch

from fairal.trainers._base import (
    BestEpoch,
    as_arrays,
    check_positive_int,
    check_sample_weight,
    classification_loss,
    epoch_range,
)
from fairal.trainers.device import default_device
from fairal.trainers.models import FittedModel, make_model, seeded

__all__ = ["ERMTrainer", "classification_loss"]

logger = logging.getLogger(__name__)


class ERMTrainer:
    """Minimise the (optionally weighted) mean cross-entropy.

    ``model="logistic"`` solves L2-regularised logistic regression to
    convergence with full-batch L-BFGS; the objective is scikit-learn's
    ``0.5·||w||² + C·Σ w_i·loss_i`` divided by ``C·n`` (same minimiser), so
    ``C=1.0`` matches ``sklearn.linear_model.LogisticRegression()``.
    ``model="mlp"`` trains with Adam on minibatches for ``epochs`` epochs
    (weight decay ``1/(C·n)``); with a ``validation`` set it keeps the
    epoch with the lowest validation loss.

    Parameters are stored as given (scikit-learn style); ``random_state``
    seeds initialisation and shuffling, so CPU runs are reproducible.
    """

    name = "erm"
    uses_validation = False  # only for early stopping of the MLP, never as a clean set
    needs_validation = False

    def __init__(
        self,
        model: Literal["logistic", "mlp"] = "logistic",
        *,
        hidden: Sequence[int] = (64,),
        C: float = 1.0,
        max_iter: int = 100,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        progress: bool = False,
        device: str | torch.device | None = None,
        random_state: int | None = 0,
    ):
        self.model = model
        self.hidden = hidden
        self.C = C
        self.max_iter = max_iter
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.progress = progress
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.model not in ("logistic", "mlp"):
            raise ValueError(f"model must be one of 'logistic' or 'mlp', got {self.model!r}")
        if not self.C > 0:
            raise ValueError(f"C must be positive, got {self.C!r}")
        for name in ("max_iter", "epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")

    def fit(self, data, *, sample_weight=None, validation=None) -> FittedModel:
        self._check_params()
        X, y, _ = as_arrays(data)
        n_classes = max(2, int(y.max()) + 1)
        device = torch.device(self.device) if self.device is not None else default_device()
        weight_np = check_sample_weight(sample_weight, len(X))
        weight = None if weight_np is None else torch.as_tensor(weight_np, device=device)
        architecture = {"kind": self.model, "n_features": X.shape[1], "n_classes": n_classes,
                        "hidden": list(self.hidden) if self.model == "mlp" else []}
        with seeded(self.random_state):
            module = make_model(self.model, X.shape[1], n_classes=n_classes, hidden=self.hidden).to(device)
        Xt = torch.as_tensor(X, device=device)
        yt = torch.as_tensor(y, device=device)
        l2 = 1.0 / (self.C * len(X))
        if self.model == "logistic":
            self._fit_lbfgs(module, Xt, yt, weight, l2)
        else:
            self._fit_adam(module, Xt, yt, weight, l2, validation)
        return FittedModel(module, architecture=architecture)

    def _fit_lbfgs(self, module, X, y, weight, l2) -> None:
        optimizer = torch.optim.LBFGS(module.parameters(), lr=1.0, max_iter=self.max_iter,
                                      tolerance_grad=1e-6, tolerance_change=1e-9,
                                      history_size=20, line_search_fn="strong_wolfe")
        linear = module.linear

        def closure():
            optimizer.zero_grad()
            losses = classification_loss(module(X), y)
            loss = (losses * weight).mean() if weight is not None else losses.mean()
            loss = loss + 0.5 * l2 * linear.weight.pow(2).sum()  # bias not penalised, as in sklearn
            loss.backward()
            return loss

        optimizer.step(closure)

    def _fit_adam(self, module, X, y, weight, l2, validation) -> None:
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=l2)
        generator = torch.Generator().manual_seed(self.random_state or 0)
        val = None
        if validation is not None:
            Xv, yv, _ = as_arrays(validation)
            val = (torch.as_tensor(Xv, device=X.device), torch.as_tensor(yv, device=X.device))
        best = BestEpoch()
        for epoch in epoch_range(self.epochs, self, "ERM"):
            module.train()
            order = torch.randperm(len(X), generator=generator).to(X.device)
            for start in range(0, len(X), self.batch_size):
                batch = order[start:start + self.batch_size]
                losses = classification_loss(module(X[batch]), y[batch])
                loss = (losses * weight[batch]).mean() if weight is not None else losses.mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if val is not None:
                module.eval()
                with torch.no_grad():
                    val_loss = classification_loss(module(val[0]), val[1]).mean().item()
                logger.debug("epoch %d validation loss %.4f", epoch, val_loss)
                best.update(module, val_loss)
        best.restore(module)
