"""A representation pretrained on the existing labeled data D0, shared by every strategy.

PANDA (§3.3, §4.2) pretrains its Transformer on D0 and uses it "as a feature
extractor for all approaches"; the B selected labels then fine-tune only the
final (linear) layer. Choice made here: the pretrained network is a per-item
feed-forward network (an MLP trained with ERM on D0) and the representation
is its last hidden layer. A Transformer applied to a one-item set reduces to
such a network, and a per-item extractor keeps an example's features
independent of which other examples happen to be in the pool, so test-time
features are well defined.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from fairal.trainers import ERMTrainer
from fairal.trainers.device import default_device
from fairal.trainers.models import MLP, ModelFileError

__all__ = ["Representation", "pretrain_representation"]


class Representation:
    """A frozen feature extractor: ``transform(X) -> float32 features``."""

    def __init__(self, encoder: nn.Module, *, n_features: int, hidden: Sequence[int]):
        self.encoder = encoder.eval()
        self.n_features = int(n_features)
        self.hidden = tuple(int(h) for h in hidden)

    @property
    def dim(self) -> int:
        return self.hidden[-1]

    @torch.no_grad()
    def transform(self, X, *, batch_size: int = 8192) -> np.ndarray:
        device = next(self.encoder.parameters()).device
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected X with {self.n_features} columns, got shape {X.shape}")
        parts = [self.encoder(torch.tensor(X[i:i + batch_size], device=device)).cpu().numpy()
                 for i in range(0, len(X), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = json.dumps({"n_features": self.n_features, "hidden": list(self.hidden)})
        state = {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}
        torch.save({"meta": meta, "state_dict": state}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Representation:
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            meta = json.loads(payload["meta"])
            encoder = _encoder(meta["n_features"], meta["hidden"])
            encoder.load_state_dict(payload["state_dict"])
        except Exception as error:  # any failure means the bytes are not a representation
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelFileError(f"not a readable fairal representation ({reason})") from error
        return cls(encoder.to(default_device()), n_features=meta["n_features"], hidden=meta["hidden"])


def _encoder(n_features: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers)


def pretrain_representation(X, y, *, hidden: Sequence[int] = (64, 32), epochs: int = 15,
                            random_state: int | None = 0) -> Representation:
    """Train an MLP on (X, y) with ERM and keep everything but its output layer."""
    fitted = ERMTrainer("mlp", hidden=hidden, epochs=epochs, lr=1e-3,
                        random_state=random_state).fit((X, y))
    layers = list(cast(MLP, fitted.module).net.children())[:-1]  # drop the output Linear
    encoder = _encoder(np.asarray(X).shape[1], hidden)
    encoder.load_state_dict(nn.Sequential(*layers).state_dict())
    return Representation(encoder.to(fitted.device), n_features=np.asarray(X).shape[1], hidden=hidden)
