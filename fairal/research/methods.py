"""The simulation methods by name (PANDA §4.1): a query strategy and the trainer that learns from it.

A light module (no numpy, torch or scikit-learn) so that the command line can
list the methods in its help without importing :mod:`fairal.research.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Method", "METHODS"]


@dataclass(frozen=True)
class Method:
    """A query strategy and the trainer that learns from the labels it collects."""

    strategy: str
    trainer: str = "erm"
    description: str = ""


#: Methods of PANDA's comparison (§4.1), by name.
METHODS: dict[str, Method] = {
    "random": Method("random", "erm", "uniform at random"),
    "margin": Method("margin", "erm", "closest to the decision boundary"),
    "entropy": Method("entropy", "erm", "highest predictive entropy"),
    "group_random": Method("group_random", "erm", "uniform within the group where h0 is worse"),
    "fal": Method("fal", "erm", "FAL: entropy + expected disparity (fast, one Newton step per candidate)"),
    "fal_exact": Method("fal_exact", "erm", "FAL with exact refits per candidate and label"),
    "fairlearn": Method("random", "fairlearn", "random selection, fairlearn ExponentiatedGradient (DP ≤ ρ)"),
    "fairlearn_al": Method("margin", "fairlearn", "margin selection, fairlearn ExponentiatedGradient (DP ≤ ρ)"),
    "panda": Method("panda", "head", "PANDA's meta-learned policy, evaluated with the learner it was trained through"),
    "panda_lr": Method("panda", "erm", "PANDA's picks, evaluated with a converged logistic regression"),
}
