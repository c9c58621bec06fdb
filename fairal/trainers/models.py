"""Classifiers in PyTorch and the fitted-model wrapper every trainer returns.

A binary classifier has one output logit (P(y=1) = sigmoid(logit)); a
multi-class one has one logit per class. ``FittedModel`` hides that
difference behind ``predict_proba`` and serialises itself as a plain
``state_dict`` read back with ``torch.load(..., weights_only=True)``, so a
model file can never run code when it is opened.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from fairal.errors import ModelFileError  # noqa: F401 (defined there, named here too)
from fairal.trainers.device import default_device

__all__ = [
    "LogisticRegression",
    "MLP",
    "make_model",
    "FitDetails",
    "FittedModel",
    "ModelFileError",
    "seeded",
]

ModelKind = Literal["logistic", "mlp"]


class LogisticRegression(nn.Module):
    """A linear layer: one logit for two classes, else one per class."""

    def __init__(self, n_features: int, n_classes: int = 2):
        super().__init__()
        self.linear = nn.Linear(n_features, 1 if n_classes == 2 else n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class MLP(nn.Module):
    """Fully connected ReLU network; ``hidden=(64,)`` is one hidden layer of 64."""

    def __init__(self, n_features: int, n_classes: int = 2, hidden: Sequence[int] = (64,)):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1 if n_classes == 2 else n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_model(
    kind: ModelKind, n_features: int, *, n_classes: int = 2, hidden: Sequence[int] = (64,)
) -> nn.Module:
    """Build an untrained classifier of the given kind."""
    if kind == "logistic":
        return LogisticRegression(n_features, n_classes)
    if kind == "mlp":
        return MLP(n_features, n_classes, tuple(hidden))
    raise ValueError(f"model must be one of 'logistic' or 'mlp', got {kind!r}")


class seeded:
    """Context manager: run a block with torch's CPU RNG seeded, then restore it.

    Parameter initialisation uses torch's global generator; forking it keeps
    a trainer reproducible without changing the caller's random state.
    """

    def __init__(self, seed: int | None):
        self.seed = seed
        self._fork = torch.random.fork_rng(devices=[])

    def __enter__(self):
        self._fork.__enter__()
        if self.seed is not None:
            torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _frozen_array(values) -> np.ndarray | None:
    if values is None:
        return None
    array = np.array(values)  # a copy, made read-only: the details are a record of one fit
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class FitDetails:
    """What a trainer learned besides the classifier; a field is None when the trainer has none.

    Per-row arrays refer to the training rows ``rows`` (indices into the data
    passed to ``fit``), or to every row in order when ``rows`` is None; FORML
    sets ``rows`` because it trains on a subset when it holds out its own exemplars.

    * ``example_weights``: the weight each training row got (FORML: the learned
      softmax weights, summing to 1; FR-Train: its final example weights in (0, 1];
      IRW / IRWO / CVaR: the last weights computed).
    * ``robustness_scores``: FR-Train's robustness discriminator on each row with
      its given label (low = the label looks poisoned).
    * ``label_trust``: how much the trainer trusts each row's label, 1 = an ordinary
      row, low = suspected (FR-Train: ``robustness_scores``; FORML: ``example_weights × n``).
      IRW's weights are not here: they favour hard rows, they do not judge labels.
    * ``mixture_weights``: fairlearn's weights of the mixture's members (summing to 1).

    Not saved by :meth:`FittedModel.to_bytes` (they describe the training, not the
    classifier): a reloaded model has empty details.
    """

    example_weights: np.ndarray | None = None
    robustness_scores: np.ndarray | None = None
    label_trust: np.ndarray | None = None
    mixture_weights: np.ndarray | None = None
    rows: np.ndarray | None = None

    def __post_init__(self):
        for name in ("example_weights", "robustness_scores", "label_trust", "mixture_weights", "rows"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))


class FittedModel:
    """A trained classifier: ``predict_proba``/``predict`` on numpy arrays.

    ``architecture`` holds what is needed to rebuild the module
    (kind, n_features, n_classes, hidden); ``details`` the trainer's typed
    extras (:class:`FitDetails`); ``info`` anything else the trainer reports
    (histories, diagnostics), never needed to predict.
    """

    def __init__(self, module: nn.Module, *, architecture: dict, details: FitDetails | None = None,
                 info: dict | None = None):
        self.module = module.eval()
        self.architecture = dict(architecture)
        self.details = details or FitDetails()
        self.info = dict(info or {})

    @property
    def n_classes(self) -> int:
        return int(self.architecture.get("n_classes", 2))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        """Raw logits as numpy: shape (n,) for binary, (n, n_classes) otherwise."""
        x = torch.tensor(np.asarray(X), dtype=torch.float32, device=self.device)
        logits = self.module(x)
        if self.n_classes == 2:
            logits = logits.squeeze(-1)
        return logits.cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), rows summing to 1."""
        logits = torch.as_tensor(self.decision_function(X))
        if self.n_classes == 2:
            p1 = torch.sigmoid(logits.double())
            return torch.stack([1 - p1, p1], dim=1).numpy()
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable class (binary: P(y=1) > 0.5, i.e. logit > 0)."""
        logits = self.decision_function(X)
        if self.n_classes == 2:
            return (logits > 0).astype(np.int64)
        return logits.argmax(axis=1).astype(np.int64)

    # Serialisation -------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Weights and architecture as bytes (a torch file holding tensors and a JSON string)."""
        buffer = io.BytesIO()
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save({"architecture": json.dumps(self.architecture), "state_dict": state}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, device: torch.device | str | None = None) -> FittedModel:
        """Rebuild a model saved by :meth:`to_bytes`; never unpickles code."""
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            architecture = json.loads(payload["architecture"])
            hidden = architecture.get("hidden", (64,))
            module = make_model(
                architecture["kind"],
                int(architecture["n_features"]),
                n_classes=int(architecture.get("n_classes", 2)),
                hidden=hidden,
            )
            module.load_state_dict(payload["state_dict"])
        except Exception as error:  # any failure means the bytes are not a usable model
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelFileError(f"not a readable fairal model file ({reason})") from error
        return cls(module.to(device or default_device()), architecture=architecture)
