"""Group-aware random sampling: uniform within the group the model serves worst.

PANDA's baseline (Sharaf, Daumé III & Ni, FAccT 2022, §4.1): "select examples
to label uniformly at random, restricted to the group on which worse
performance is achieved by h0".
"""

from __future__ import annotations

import logging

import numpy as np

from fairal.strategies._base import QueryStrategy

__all__ = ["GroupAwareRandomSampling"]

logger = logging.getLogger(__name__)


class GroupAwareRandomSampling(QueryStrategy):
    """Random examples of the group on which ``model`` is least accurate, then the rest.

    "Performs worse" is the lower accuracy of ``model`` on the labeled
    examples (``labeled``, ``y``) of each group; groups without labeled
    examples are not candidates, and ties go to the group that sorts first.
    The ranking puts the chosen group's unlabeled examples first, in random
    order, then all others in random order, so ``rank`` is a full permutation
    and ``query`` with ``n`` larger than the group fills up from the rest.
    Scores: ``1 + u`` in the chosen group and ``u`` elsewhere, ``u ~ U(0, 1)``
    drawn from ``random_state``.

    PANDA chooses the group once, with the initial model ``h0``: the strategy
    is therefore non-adaptive (``adaptive = False``), so projects and
    ``simulate`` rank the pool once with the first model, as the paper does.
    Called directly, ``query`` uses whatever model it is given.

    Attributes
    ----------
    chosen_group_ : str
        The group the last query favoured.
    group_accuracy_ : dict
        Accuracy of ``model`` on each group's labeled examples at the last query.
    """

    name = "group_random"
    adaptive = False  # the group is chosen once, by h0 (PANDA §4.1)

    def _pool_scores(self, model, X, unlabeled, labeled, y, groups) -> np.ndarray:
        if groups is None:
            raise ValueError(f"the {self.name!r} strategy needs the sensitive group of every row (groups=...)")
        groups = np.asarray(groups)
        if len(groups) != len(X):
            raise ValueError(f"groups must have one entry per row of X ({len(X)}), got {len(groups)}")
        if labeled is None or y is None or len(labeled) == 0:
            raise ValueError(
                f"the {self.name!r} strategy needs labeled examples (labeled and y) to tell "
                "which group the model serves worse; got none"
            )
        if len(labeled) != len(y):
            raise ValueError(f"labeled and y must have the same length, got {len(labeled)} and {len(y)}")
        correct = model.predict(X[labeled]) == y
        labeled_groups = groups[labeled]
        self.group_accuracy_ = {str(g): float(correct[labeled_groups == g].mean()) for g in np.unique(labeled_groups)}
        self.chosen_group_ = min(self.group_accuracy_, key=self.group_accuracy_.__getitem__)
        logger.info("group-aware random: %s is served worst (accuracy %s)", self.chosen_group_, self.group_accuracy_)
        u = np.random.default_rng(self.random_state).random(len(unlabeled))
        return u + (groups[unlabeled].astype(str) == self.chosen_group_)
