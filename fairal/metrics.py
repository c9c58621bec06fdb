"""Accuracy and group-fairness metrics for binary classifiers.

Two families live here:

* **Hard metrics** — plain numpy functions ``f(y_true, y_pred, *,
  sensitive_features, ...) -> float`` on 0/1 predictions, named and defined
  like fairlearn's where fairlearn has the metric (cross-checked against
  fairlearn 0.15 in ``tests/test_metrics.py``). :func:`evaluate` computes all
  of :data:`METRICS` in one pass and is cheap enough to call after every label.
* **Differentiable surrogates** — :func:`soft_demographic_parity` and
  :func:`soft_equalized_odds` take probabilities ``P(y_hat=1)`` as a torch
  tensor and return a scalar that gradients flow through (PANDA, trainers).

Notation: ``SR_a = P(y_hat=1 | A=a)`` is the selection rate of group ``a``;
``r_{a,y} = P(y_hat=1 | A=a, Y=y)`` (``r_{a,1}`` = TPR, ``r_{a,0}`` = FPR).

Definitions (``METRICS`` name: definition — fairlearn 0.15 equivalent):

* ``demographic_parity_difference``: max_a SR_a - min_a SR_a
  — ``demographic_parity_difference``.
* ``demographic_parity_to_overall``: max_a |SR_a - SR| (PANDA Table 1 Δ^DP)
  — ``demographic_parity_difference(method="to_overall")``.
* ``disparate_impact_ratio``: min_a SR_a / max_a SR_a
  — ``demographic_parity_ratio`` (except when all SR_a = 0, below).
* ``equalized_odds_difference``: max_y (max_a r_{a,y} - min_a r_{a,y})
  — ``equalized_odds_difference``. With ``method="to_overall"``:
  max_{a,y} |r_{a,y} - r_y| (PANDA Δ^EO), fairlearn's ``method="to_overall"``.
* ``error_rate_balance``: max_{a,a',y} |r_{a,y} - r_{a',y}| (PANDA Δ^EB). This
  *is* max_y (max_a - min_a), so it always equals the line above and
  fairlearn's ``equalized_odds_difference(agg="worst_case")``.
* ``true_positive_rate_difference``: max_a TPR_a - min_a TPR_a (FORML's TPRD)
  — ``true_positive_rate_difference``.
* ``max_false_negative_rate``: max_a FNR_a (FORML's maxFNR)
  — ``MetricFrame(metrics=false_negative_rate, ...).group_max()``.
* ``worst_group_accuracy``: min_a accuracy_a — ``accuracy_score_group_min``.
* ``accuracy``, ``f1``: overall, positive class 1 — sklearn's
  ``accuracy_score``, ``f1_score(zero_division=0)``.

Conventions (documented deviations are marked *differs*):

* **Empty cells.** A group with no example of the label a rate conditions on
  (no positives for TPR/FNR, no negatives for FPR) gets rate **0** for that
  term — this is what fairlearn returns (sklearn's ``confusion_matrix(...,
  normalize="true")`` turns 0/0 into 0), so the hard metrics match fairlearn
  exactly, including on such groups. Note what it implies: TPR = FNR = 0 for
  a group without positives, so a tiny group can raise the TPR gap.
  The torch surrogates instead *skip* empty cells (see their docstrings).
* **All selection rates 0.** :func:`disparate_impact_ratio` returns 1.0 (every
  group is treated alike); fairlearn's ``demographic_parity_ratio`` returns
  nan (*differs*).
* **Zero-weight groups.** With ``sample_weight``, a group whose weights sum to
  0 is dropped, as if it were absent.
* **One group.** Allowed; every difference is 0 and the ratio 1
  (``max_false_negative_rate`` is a level, not a difference: it stays the FNR).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported lazily: the numpy metrics do not need it
    import torch

__all__ = [
    "DISPARITY_METRICS",
    "HIGHER_IS_BETTER",
    "LABELS",
    "METRICS",
    "accuracy",
    "demographic_parity_difference",
    "disparate_impact_ratio",
    "equalized_odds_difference",
    "error_rate_balance",
    "evaluate",
    "f1",
    "intersect_groups",
    "max_false_negative_rate",
    "soft_demographic_parity",
    "soft_equalized_odds",
    "true_positive_rate_difference",
    "worst_group_accuracy",
]

Method = Literal["between_groups", "to_overall"]
_METHODS = ("between_groups", "to_overall")


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #


def _check_lengths(lengths: dict[str, int]) -> None:
    """All named inputs have the same, non-zero length (message names them)."""
    names, values = list(lengths), list(lengths.values())
    if len(set(values)) != 1:
        raise ValueError(
            f"{', '.join(names[:-1])} and {names[-1]} must have the same length, "
            f"got lengths {', '.join(map(str, values[:-1]))} and {values[-1]}"
        )
    if values[0] == 0:
        raise ValueError("expected at least one example, got 0")


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(
            f"method must be one of 'between_groups' or 'to_overall', got {method!r}"
        )


def _as_1d(values, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_binary(arr: np.ndarray, name: str) -> np.ndarray:
    """Return ``arr`` as int8 0/1, or raise naming the values that are not 0/1."""
    if arr.dtype == bool:
        return arr.view(np.int8)
    if arr.dtype == object:
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind in "iuf":
        ok = (arr == 0) | (arr == 1)
        if ok.all():
            return arr.astype(np.int8)
        bad = arr[~ok]
    else:
        bad = arr
    bad_values = pd.unique(bad)[:5].tolist()
    raise ValueError(
        f"{name} must contain only the binary labels 0 and 1, got {bad_values}"
    )


def _combine_columns(columns: list[np.ndarray]) -> np.ndarray:
    joined = pd.Series(columns[0]).astype(str)
    for col in columns[1:]:
        joined = joined + "|" + pd.Series(col).astype(str)
    return joined.to_numpy(dtype=str)


def intersect_groups(*arrays) -> np.ndarray:
    """Combine several per-example labellings into one group label per example.

    ``intersect_groups(["Female", "Male"], [1, 0])`` gives
    ``array(["Female|1", "Male|0"])``. Pass the label as one of the arrays to get
    group-DRO groups (label × attribute) for :func:`worst_group_accuracy`.
    """
    if not arrays:
        raise ValueError("intersect_groups needs at least one array, got none")
    columns = [_as_1d(a, f"array {i}") for i, a in enumerate(arrays)]
    lengths = [len(c) for c in columns]
    if len(set(lengths)) != 1:
        raise ValueError(f"all arrays must have the same length, got lengths {lengths}")
    return _combine_columns(columns)


def _group_codes(sensitive_features) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 for the groups, and G. Several columns are intersected."""
    if isinstance(sensitive_features, pd.DataFrame):
        columns = [sensitive_features[c].to_numpy() for c in sensitive_features.columns]
        values = columns[0] if len(columns) == 1 else _combine_columns(columns)
    elif isinstance(sensitive_features, pd.Series) and isinstance(
        sensitive_features.dtype, pd.CategoricalDtype
    ):
        values = sensitive_features  # factorize uses the categorical codes directly
    else:
        values = (
            sensitive_features.to_numpy()
            if isinstance(sensitive_features, pd.Series)
            else np.asarray(sensitive_features)
        )
        if values.ndim == 2:
            columns = [values[:, j] for j in range(values.shape[1])]
            values = columns[0] if len(columns) == 1 else _combine_columns(columns)
        elif values.ndim != 1:
            raise ValueError(
                f"sensitive_features must be one- or two-dimensional, got shape {values.shape}"
            )
    codes, uniques = pd.factorize(values)
    if len(values) and codes.min() < 0:
        n_missing = int((codes < 0).sum())
        raise ValueError(f"sensitive_features must not contain missing values, got {n_missing}")
    return codes, len(uniques)


def _prepare(y_true, y_pred, sensitive_features, sample_weight, *, need_y_true: bool = True):
    """Validate inputs; return (y_true or None, y_pred, codes, n_groups, weights or None)."""
    y_pred_arr = _as_1d(y_pred, "y_pred")
    arrays = {"y_pred": y_pred_arr}
    y_true_arr = None
    if y_true is not None and need_y_true:
        y_true_arr = _as_1d(y_true, "y_true")
        arrays = {"y_true": y_true_arr, **arrays}
    elif y_true is not None:
        arrays = {"y_true": _as_1d(y_true, "y_true"), **arrays}
    elif need_y_true:
        raise ValueError("y_true is required for this metric, got None")
    codes = n_groups = None
    if sensitive_features is not None:
        codes, n_groups = _group_codes(sensitive_features)
        arrays["sensitive_features"] = codes
    w = None
    if sample_weight is not None:
        w = _as_1d(sample_weight, "sample_weight").astype(float)
        arrays["sample_weight"] = w
    _check_lengths({name: len(a) for name, a in arrays.items()})
    y_pred_arr = _check_binary(y_pred_arr, "y_pred")
    if y_true_arr is not None:
        y_true_arr = _check_binary(y_true_arr, "y_true")
    if w is not None:
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(
                "sample_weight must be finite and non-negative, "
                "got negative or non-finite values"
            )
        if w.sum() <= 0:
            raise ValueError("sample_weight must have a positive sum, got 0")
    if codes is None:
        codes, n_groups = np.zeros(len(y_pred_arr), dtype=np.intp), 1
    return y_true_arr, y_pred_arr, codes, n_groups, w


# --------------------------------------------------------------------------- #
# Group statistics: everything below is derived from two (G, 2) tables
# --------------------------------------------------------------------------- #


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0 where den == 0 (fairlearn's / sklearn's convention)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


class _Stats:
    """Per group ``a`` and label ``y``: total (weighted) count and count predicted 1."""

    __slots__ = ("count", "pred1")

    def __init__(self, y_true, y_pred, codes, n_groups, w):
        if y_true is None:  # demographic parity only: put every row in column 0
            idx = codes * 2
        else:
            idx = codes * 2 + y_true
        size = 2 * n_groups
        if w is None:
            count = np.bincount(idx, minlength=size).astype(float)
            pred1 = np.bincount(idx, weights=y_pred, minlength=size)
        else:
            count = np.bincount(idx, weights=w, minlength=size)
            pred1 = np.bincount(idx, weights=w * y_pred, minlength=size)
        count, pred1 = count.reshape(n_groups, 2), pred1.reshape(n_groups, 2)
        present = count.sum(axis=1) > 0  # drops zero-weight groups
        self.count, self.pred1 = count[present], pred1[present]

    # selection rates
    def selection_rates(self) -> np.ndarray:
        return self.pred1.sum(axis=1) / self.count.sum(axis=1)

    def overall_selection_rate(self) -> float:
        return self.pred1.sum() / self.count.sum()

    # P(y_hat=1 | A=a, Y=y): column 0 = FPR, column 1 = TPR
    def conditional_rates(self) -> np.ndarray:
        return _safe_div(self.pred1, self.count)

    def overall_conditional_rates(self) -> np.ndarray:
        return _safe_div(self.pred1.sum(axis=0), self.count.sum(axis=0))

    def false_negative_rates(self) -> np.ndarray:
        return _safe_div(self.count[:, 1] - self.pred1[:, 1], self.count[:, 1])

    def group_accuracies(self) -> np.ndarray:
        correct = self.pred1[:, 1] + (self.count[:, 0] - self.pred1[:, 0])
        return correct / self.count.sum(axis=1)

    def accuracy(self) -> float:
        correct = self.pred1[:, 1].sum() + (self.count[:, 0] - self.pred1[:, 0]).sum()
        return correct / self.count.sum()

    def f1(self) -> float:
        tp = self.pred1[:, 1].sum()
        fp = self.pred1[:, 0].sum()
        fn = self.count[:, 1].sum() - tp
        den = 2 * tp + fp + fn
        return 2 * tp / den if den > 0 else 0.0


def _dp(s: _Stats, method: str) -> float:
    rates = s.selection_rates()
    if method == "between_groups":
        return rates.max() - rates.min()
    return np.abs(rates - s.overall_selection_rate()).max()


def _di(s: _Stats) -> float:
    rates = s.selection_rates()
    top = rates.max()
    return rates.min() / top if top > 0 else 1.0


def _eo(s: _Stats, method: str) -> float:
    rates = s.conditional_rates()
    if method == "between_groups":
        return (rates.max(axis=0) - rates.min(axis=0)).max()
    return np.abs(rates - s.overall_conditional_rates()).max()


def _tprd(s: _Stats) -> float:
    tpr = s.conditional_rates()[:, 1]
    return tpr.max() - tpr.min()


# --------------------------------------------------------------------------- #
# Public hard metrics
# --------------------------------------------------------------------------- #


def accuracy(y_true, y_pred, *, sample_weight=None) -> float:
    """Fraction of correct 0/1 predictions (weighted by ``sample_weight``)."""
    s = _Stats(*_prepare(y_true, y_pred, None, sample_weight))
    return float(s.accuracy())


def f1(y_true, y_pred, *, sample_weight=None) -> float:
    """Binary F1 of the positive class 1: 2TP / (2TP + FP + FN).

    0 when there are neither positives nor positive predictions, like
    ``sklearn.metrics.f1_score(..., zero_division=0)``.
    """
    s = _Stats(*_prepare(y_true, y_pred, None, sample_weight))
    return float(s.f1())


def demographic_parity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method: Method = "between_groups",
    sample_weight=None,
) -> float:
    """Spread of group selection rates ``SR_a = P(y_hat=1 | A=a)``.

    ``"between_groups"``: max_a SR_a - min_a SR_a (fairlearn's default).
    ``"to_overall"``: max_a |SR_a - SR| (PANDA Table 1 Δ^DP).
    ``y_true`` is not used (accepted for fairlearn's signature; may be None).
    """
    _check_method(method)
    _, y_pred, codes, n_groups, w = _prepare(
        y_true, y_pred, sensitive_features, sample_weight, need_y_true=False
    )
    return float(_dp(_Stats(None, y_pred, codes, n_groups, w), method))


def disparate_impact_ratio(y_true, y_pred, *, sensitive_features, sample_weight=None) -> float:
    """min_a SR_a / max_a SR_a, in [0, 1]; 1 is fair.

    fairlearn's ``demographic_parity_ratio``, except that when every group's
    selection rate is 0 this returns 1.0 (no group is favoured) where fairlearn
    returns nan. ``y_true`` is not used (may be None).
    """
    _, y_pred, codes, n_groups, w = _prepare(
        y_true, y_pred, sensitive_features, sample_weight, need_y_true=False
    )
    return float(_di(_Stats(None, y_pred, codes, n_groups, w)))


def equalized_odds_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method: Method = "between_groups",
    sample_weight=None,
) -> float:
    """Largest gap in ``r_{a,y} = P(y_hat=1 | A=a, Y=y)`` over y ∈ {0, 1}.

    ``"between_groups"``: max_y (max_a r_{a,y} - min_a r_{a,y}) — fairlearn's
    ``equalized_odds_difference`` (``agg="worst_case"``), i.e. the larger of
    the TPR and FPR differences. ``"to_overall"``: max_{a,y} |r_{a,y} - r_y|
    with r_y = P(y_hat=1 | Y=y) — PANDA Table 1 Δ^EO, and also fairlearn's
    ``method="to_overall"``. A group without examples of label y counts with
    rate 0 for that y (fairlearn's convention).
    """
    _check_method(method)
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    return float(_eo(s, method))


def error_rate_balance(y_true, y_pred, *, sensitive_features, sample_weight=None) -> float:
    """PANDA Table 1 Δ^EB = max_{a,a',y} |r_{a,y} - r_{a',y}|.

    Equal to max_y (max_a r_{a,y} - min_a r_{a,y}), hence identical to
    :func:`equalized_odds_difference` with ``method="between_groups"`` and to
    fairlearn's ``equalized_odds_difference(agg="worst_case")``.
    """
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    return float(_eo(s, "between_groups"))


def true_positive_rate_difference(
    y_true, y_pred, *, sensitive_features, sample_weight=None
) -> float:
    """FORML's TPRD: max_a TPR_a - min_a TPR_a (fairlearn's function of the same name).

    A group without positives has TPR 0 (fairlearn's convention).
    """
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    return float(_tprd(s))


def max_false_negative_rate(y_true, y_pred, *, sensitive_features, sample_weight=None) -> float:
    """FORML's maxFNR: max_a P(y_hat=0 | A=a, Y=1).

    fairlearn: ``MetricFrame(metrics=false_negative_rate, ...).group_max()``.
    A group without positives has FNR 0 (fairlearn's convention).
    """
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    return float(s.false_negative_rates().max())


def worst_group_accuracy(y_true, y_pred, *, sensitive_features, sample_weight=None) -> float:
    """min_a accuracy_a (fairlearn's ``accuracy_score_group_min``).

    For group-DRO groups (label × attribute) pass
    ``sensitive_features=intersect_groups(attribute, y_true)``.
    """
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    return float(s.group_accuracies().min())


# --------------------------------------------------------------------------- #
# Registry and the hot-path evaluator
# --------------------------------------------------------------------------- #


def _demographic_parity_to_overall(y_true, y_pred, *, sensitive_features, sample_weight=None):
    return demographic_parity_difference(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        method="to_overall",
        sample_weight=sample_weight,
    )


def _equalized_odds_to_overall(y_true, y_pred, *, sensitive_features, sample_weight=None):
    return equalized_odds_difference(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        method="to_overall",
        sample_weight=sample_weight,
    )


def _accuracy(y_true, y_pred, *, sensitive_features=None, sample_weight=None):
    return accuracy(y_true, y_pred, sample_weight=sample_weight)


def _f1(y_true, y_pred, *, sensitive_features=None, sample_weight=None):
    return f1(y_true, y_pred, sample_weight=sample_weight)


#: name (a stable database column) → ``f(y_true, y_pred, *, sensitive_features,
#: sample_weight=None) -> float``. Every entry takes ``sensitive_features`` so
#: callers can loop over it; accuracy and f1 ignore it.
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_to_overall": _demographic_parity_to_overall,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_to_overall": _equalized_odds_to_overall,
    "error_rate_balance": error_rate_balance,
    "disparate_impact_ratio": disparate_impact_ratio,
    "true_positive_rate_difference": true_positive_rate_difference,
    "max_false_negative_rate": max_false_negative_rate,
    "worst_group_accuracy": worst_group_accuracy,
}

#: Metrics where higher is better; disparate_impact_ratio is a fairness metric
#: in this set (1 = fair), unlike the differences in DISPARITY_METRICS.
HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "disparate_impact_ratio", "worst_group_accuracy"})

#: Fairness metrics where lower is fairer (0 = fair), in METRICS order.
DISPARITY_METRICS: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_to_overall",
    "equalized_odds_difference",
    "equalized_odds_to_overall",
    "error_rate_balance",
    "true_positive_rate_difference",
    "max_false_negative_rate",
)

#: Human-readable names for plots and tables.
LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "f1": "F1 score",
    "demographic_parity_difference": "Demographic parity difference",
    "demographic_parity_to_overall": "Demographic parity (to overall)",
    "equalized_odds_difference": "Equalized odds difference",
    "equalized_odds_to_overall": "Equalized odds (to overall, PANDA)",
    "error_rate_balance": "Error-rate balance",
    "disparate_impact_ratio": "Disparate impact ratio",
    "true_positive_rate_difference": "True-positive-rate difference (TPRD)",
    "max_false_negative_rate": "Max false-negative rate (maxFNR)",
    "worst_group_accuracy": "Worst-group accuracy",
}


def evaluate(y_true, y_pred, *, sensitive_features, sample_weight=None) -> dict[str, float]:
    """Every entry of :data:`METRICS`, as plain floats, from one pass over the data.

    Validates once, factorizes the groups once and derives every metric from
    two bincounts, so it costs well under a millisecond per 10k rows beyond
    factorizing string group labels.
    """
    s = _Stats(*_prepare(y_true, y_pred, sensitive_features, sample_weight))
    sel = s.selection_rates()
    values = {
        "accuracy": s.accuracy(),
        "f1": s.f1(),
        "demographic_parity_difference": sel.max() - sel.min(),
        "demographic_parity_to_overall": np.abs(sel - s.overall_selection_rate()).max(),
        "equalized_odds_difference": _eo(s, "between_groups"),
        "equalized_odds_to_overall": _eo(s, "to_overall"),
        "error_rate_balance": _eo(s, "between_groups"),
        "disparate_impact_ratio": sel.min() / sel.max() if sel.max() > 0 else 1.0,
        "true_positive_rate_difference": _tprd(s),
        "max_false_negative_rate": s.false_negative_rates().max(),
        "worst_group_accuracy": s.group_accuracies().min(),
    }
    return {name: float(values[name]) for name in METRICS}


# --------------------------------------------------------------------------- #
# Differentiable surrogates (torch)
# --------------------------------------------------------------------------- #


def _check_soft_inputs(tensors: dict[str, torch.Tensor | None], smooth) -> None:
    import torch

    present = {k: v for k, v in tensors.items() if v is not None}
    for name, t in present.items():
        if t.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {tuple(t.shape)}")
    _check_lengths({name: t.shape[0] for name, t in present.items()})
    groups = present["groups"]
    if groups.dtype.is_floating_point or groups.dtype == torch.bool:
        raise ValueError(f"groups must be integer codes, got dtype {groups.dtype}")
    if groups.min() < 0:
        raise ValueError(f"groups must be non-negative codes, got minimum {int(groups.min())}")
    weights = present.get("weights")
    if weights is not None and bool((weights < 0).any()):
        raise ValueError("weights must be non-negative, got negative values")
    if smooth is not None and not smooth > 0:
        raise ValueError(f"smooth must be a positive temperature or None, got {smooth!r}")


def _soft_max(x: torch.Tensor, smooth: float | None) -> torch.Tensor:
    """max(x), or the upper bound smooth * logsumexp(x / smooth) (≤ max + smooth·log len)."""
    import torch

    if smooth is None:
        return torch.max(x)
    return smooth * torch.logsumexp(x / smooth, dim=0)


def _soft_abs_max(x: torch.Tensor, smooth: float | None) -> torch.Tensor:
    """max |x|; the smooth version takes logsumexp over (x, -x) to stay smooth at 0."""
    import torch

    if smooth is None:
        return torch.max(torch.abs(x))
    return _soft_max(torch.cat([x, -x]), smooth)


def _soft_range(x: torch.Tensor, smooth: float | None) -> torch.Tensor:
    """max(x) - min(x)."""
    return _soft_max(x, smooth) + _soft_max(-x, smooth)


def _weighted_cell_means(probs, cells, n_cells, weights):
    """Per-cell weighted mean of probs, per-cell total weight, and cell totals."""
    import torch

    w = torch.ones_like(probs) if weights is None else weights.to(probs.dtype)
    zeros = torch.zeros(n_cells, dtype=probs.dtype, device=probs.device)
    num = zeros.index_add(0, cells, w * probs)
    den = zeros.index_add(0, cells, w)
    valid = den > 0
    means = num / torch.where(valid, den, torch.ones_like(den))
    return means, valid, num, den


def soft_demographic_parity(
    probs: torch.Tensor,
    groups: torch.Tensor,
    *,
    method: Method = "between_groups",
    weights: torch.Tensor | None = None,
    smooth: float | None = None,
) -> torch.Tensor:
    """Differentiable demographic parity of probabilities ``probs = P(y_hat=1)``.

    Group selection rates are weighted means ``SR_a = Σ_{i∈a} w_i p_i / Σ_{i∈a} w_i``
    (``index_add``, so gradients reach both ``probs`` and ``weights``).
    ``"between_groups"``: max_a SR_a - min_a SR_a; ``"to_overall"``:
    max_a |SR_a - SR|. The max is ``torch.max`` — a subgradient: the gradient
    flows only through the arg-max group(s). ``smooth=τ`` replaces it with
    ``τ·logsumexp(·/τ)``, an upper bound within ``τ·log k`` that spreads
    gradient over every group. Groups whose weights sum to 0 are skipped.

    With probs exactly 0/1 and ``smooth=None`` this equals
    :func:`demographic_parity_difference` on the same weights.

    ``probs``, ``groups`` (and ``weights``) of shape ``(M, N)`` are M separate sets (e.g. M
    simulated labeling tasks): the result is ``(M,)``, row m equal to the call on row m.
    """
    _check_method(method)
    if probs.ndim != 2:  # one set: the first row of a batch of one
        _check_soft_inputs({"probs": probs, "groups": groups, "weights": weights}, smooth)
        return _soft_demographic_parity_rows(probs[None], groups[None], method=method,
                                             weights=None if weights is None else weights[None], smooth=smooth)[0]
    for name, t in (("groups", groups), ("weights", weights)):
        if t is not None and t.shape != probs.shape:
            raise ValueError(f"{name} must have the shape of probs {tuple(probs.shape)}, got {tuple(t.shape)}")
    _check_soft_inputs({"probs": probs.reshape(-1), "groups": groups.reshape(-1),
                        "weights": None if weights is None else weights.reshape(-1)}, smooth)
    return _soft_demographic_parity_rows(probs, groups, method=method, weights=weights, smooth=smooth)


def _soft_demographic_parity_rows(probs, groups, *, method, weights, smooth):
    """:func:`soft_demographic_parity` of each row of checked ``(M, N)`` inputs, in one pass."""
    import torch

    m = probs.shape[0]
    n_groups = int(groups.max()) + 1
    cells = (groups.long() + n_groups * torch.arange(m, device=groups.device)[:, None]).reshape(-1)
    rates, valid, num, den = _weighted_cell_means(probs.reshape(-1), cells, m * n_groups,
                                                  None if weights is None else weights.reshape(-1))
    rates, valid = rates.reshape(m, n_groups), valid.reshape(m, n_groups)
    if method == "between_groups":
        spread = _masked_soft_max(rates, valid, smooth) + _masked_soft_max(-rates, valid, smooth)
    else:
        overall = num.reshape(m, n_groups).sum(-1, keepdim=True) / den.reshape(m, n_groups).sum(-1, keepdim=True)
        gaps = rates - overall
        if smooth is None:
            spread = _masked_soft_max(gaps.abs(), valid, None)
        else:
            spread = _masked_soft_max(torch.cat([gaps, -gaps], -1), torch.cat([valid, valid], -1), smooth)
    return torch.where(valid.any(-1), spread, probs.sum(-1) * 0)


def _masked_soft_max(x, valid, smooth):
    """Row-wise :func:`_soft_max` over the entries where ``valid`` holds."""
    import torch

    if smooth is None:
        return torch.where(valid, x, float("-inf")).amax(-1)
    return smooth * torch.logsumexp(torch.where(valid, x / smooth, float("-inf")), -1)


def soft_equalized_odds(
    probs: torch.Tensor,
    y_true: torch.Tensor,
    groups: torch.Tensor,
    *,
    method: Method = "between_groups",
    weights: torch.Tensor | None = None,
    smooth: float | None = None,
) -> torch.Tensor:
    """Differentiable equalized odds of probabilities ``probs = P(y_hat=1)``.

    ``r_{a,y}`` is the weighted mean of probs over group ``a`` with label ``y``.
    ``"between_groups"``: max_y (max_a r_{a,y} - min_a r_{a,y}) (= PANDA's
    error-rate balance Δ^EB); ``"to_overall"``: max_{a,y} |r_{a,y} - r_y|
    (PANDA Δ^EO). Max/subgradient and ``smooth`` as in
    :func:`soft_demographic_parity`.

    Empty cells (a group with no — or zero-weight — examples of label y) are
    **skipped**, unlike the hard metrics, which give them rate 0 as fairlearn
    does: a constant 0 would dominate the max and push the other groups' rates
    toward 0. With probs exactly 0/1, ``smooth=None`` and no empty cell this
    equals :func:`equalized_odds_difference`.
    """
    import torch

    _check_method(method)
    _check_soft_inputs(
        {"probs": probs, "y_true": y_true, "groups": groups, "weights": weights}, smooth
    )
    y = y_true.long()
    if bool(((y != 0) & (y != 1)).any()):
        bad = torch.unique(y_true[(y != 0) & (y != 1)])[:5].tolist()
        raise ValueError(f"y_true must contain only the binary labels 0 and 1, got {bad}")
    groups = groups.long()
    n_groups = int(groups.max()) + 1
    rates, valid, num, den = _weighted_cell_means(probs, groups * 2 + y, 2 * n_groups, weights)
    rates, valid = rates.view(n_groups, 2), valid.view(n_groups, 2)
    num, den = num.view(n_groups, 2), den.view(n_groups, 2)
    terms = []
    for label in (0, 1):
        r = rates[:, label][valid[:, label]]
        if r.numel() == 0:
            continue
        if method == "between_groups":
            terms.append(_soft_range(r, smooth))
        else:
            overall = num[:, label].sum() / den[:, label].sum()
            terms.append(_soft_abs_max(r - overall, smooth))
    if not terms:
        return (probs * 0).sum()
    return _soft_max(torch.stack(terms), smooth)
