"""PANDA's learned selection policy as a query strategy.

The policy is agnostic to the current classifier (PANDA §3.3): one forward
pass scores the whole pool, and one Gumbel-top-B draw (seeded by
``random_state``) fixes the order of every pick, so the ranking is computed
once per draw (``adaptive = False``) and selection is as fast as a forward
pass. The policy reads the representation it was trained with (stored in the
policy file) plus a one-hot of each item's group.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from fairal.strategies._base import ScoreBasedStrategy

__all__ = ["PandaSampling", "DEFAULT_POLICY", "PolicyMismatchError"]

#: The policy shipped with fairal: meta-trained on Adult's meta-train half, sex as the group.
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "data" / "policies" / "panda-adult-sex.pt"


class PolicyMismatchError(ValueError):
    """The policy was trained for other data (groups or features) than it is asked to rank."""


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    from fairal.panda.train import load_trained_policy

    return load_trained_policy(path)


class PandaSampling(ScoreBasedStrategy):
    """Rank the pool by policy logits + Gumbel noise (one Gumbel-top-|U| draw)."""

    name = "panda"
    needs_model = False
    adaptive = False

    def __init__(self, *, policy_path: str | os.PathLike | None = None, random_state: int | None = None):
        super().__init__(random_state=random_state)
        self.policy_path = policy_path

    def trained_policy(self):
        path = Path(self.policy_path or os.environ.get("FAIRAL_PANDA_POLICY", DEFAULT_POLICY))
        if not path.exists():
            raise FileNotFoundError(f"no PANDA policy at {path}; train one with "
                                    f"`python -m fairal train-policy --dataset adult --out {path}`")
        return _load(str(path), path.stat().st_mtime)

    def _query(self, model, X, unlabeled, labeled, y, n, groups):
        if groups is None:
            raise ValueError("the 'panda' strategy needs the sensitive group of every row (groups=...)")
        self.last_scores_ = self.score_items(X[unlabeled], np.asarray(groups)[unlabeled])
        order = np.argsort(-self.last_scores_, kind="stable")[:n]
        return unlabeled[order]

    def score(self, model, X_unlabeled):  # pragma: no cover - _query passes the groups itself
        raise NotImplementedError("PandaSampling scores need groups; call query()")

    def score_items(self, X_items: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Policy logits plus seeded Gumbel noise for the given items."""
        from fairal.panda.relaxed_topk import sample_gumbel
        from fairal.panda.train import policy_inputs

        trained = self.trained_policy()
        rep, names = trained.representation, trained.group_names
        X_items = np.asarray(X_items, dtype=np.float32)
        if X_items.shape[1] == rep.n_features:
            features = rep.transform(X_items)
        elif X_items.shape[1] == rep.dim:  # already in the representation (simulate passes it)
            features = X_items
        else:
            raise PolicyMismatchError(
                f"the PANDA policy reads {rep.n_features} input features (or {rep.dim} represented ones), "
                f"got {X_items.shape[1]}; train a policy for this data set with `python -m fairal train-policy`")
        unknown = sorted(set(map(str, groups)) - set(names))
        if unknown:
            raise PolicyMismatchError(
                f"the PANDA policy was trained for groups {names} ({trained.metadata.get('dataset')}, "
                f"{trained.metadata.get('sensitive')}); these items have {unknown}")
        codes = np.array([names.index(str(g)) for g in groups], dtype=np.int64)
        device = next(trained.policy.parameters()).device
        with torch.no_grad():
            inputs = torch.as_tensor(policy_inputs(features, codes, len(names)), device=device)
            logits = trained.policy(inputs).double().cpu()
        generator = torch.Generator().manual_seed(int(self.random_state or 0))
        noise = sample_gumbel(logits.shape, generator=generator, dtype=torch.float64)
        return (logits + noise).numpy()
