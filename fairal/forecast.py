"""How many more labels until the disparity meets the constraint ρ?

A rough, honest forecast from the curve so far: the disparity of a model
trained on n labels is fitted as ``a + s·log(1 + n)`` by least squares
(statsmodels OLS; learning curves flatten, and a log trend is the simplest
shape that does) over the trainer's curve points, and solved for the budget
where it reaches ρ. The slope's 80 % confidence interval gives a range. The
F-score is fitted the same way and read off at that budget ("at the current
F-score" means: what the F-score trend says it will be then). When a
simulation of the same strategy on the same data is given (``python -m
fairal simulate``), the budget at which the simulated mean curve reaches ρ is
reported too. It is a trend, not a promise: a strategy whose disparity does
not fall gets "not on this trend".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Forecast", "labels_to_constraint"]

MIN_POINTS = 4


@dataclass(frozen=True)
class Forecast:
    current_budget: int
    current_value: float | None
    rho: float
    more_labels: int | None  # None: not on this trend (or too few points)
    low: int | None  # range from the slope's 80 % interval (None = unbounded)
    high: int | None
    f1_then: float | None
    simulated_budget: int | None  # where the simulated mean reaches ρ (None: never / no simulation)
    message: str


def _fit(x: np.ndarray, y: np.ndarray):
    import statsmodels.api as sm

    return sm.OLS(y, sm.add_constant(np.log1p(x))).fit()


def _solve(intercept: float, slope: float, rho: float) -> float | None:
    if slope >= 0:
        return None
    return float(np.expm1((rho - intercept) / slope))


def labels_to_constraint(curve: pd.DataFrame, *, metric: str, rho: float, trainer: str | None = None,
                         simulation: pd.DataFrame | None = None, strategy: str | None = None,
                         higher_is_better: bool = False, max_budget: int | None = None) -> Forecast:
    """Forecast from curve points (columns ``budget``, ``trainer``, ``metric``, ``f1``).

    ``higher_is_better``: for ratio metrics such as the DI ratio, the
    constraint is ``value ≥ ρ`` and the trend must rise. ``max_budget``: the
    most labels the project can get (its pool); a trend that meets ρ only
    beyond it is reported as not reaching ρ, not as an absurd count.
    """
    frame = curve if trainer is None else curve[curve["trainer"] == trainer]
    frame = frame.dropna(subset=[metric]).sort_values("budget")
    sign = -1.0 if higher_is_better else 1.0
    if frame.empty:
        return Forecast(0, None, rho, None, None, None, None, None, "no curve points yet")
    current = frame.iloc[-1]
    budget, value = int(current["budget"]), float(current[metric])
    if sign * value <= sign * rho:
        return Forecast(budget, value, rho, 0, 0, 0, float(current.get("f1", np.nan)),
                        _simulated(simulation, metric, rho, strategy, sign), "the constraint is met now")
    simulated = _simulated(simulation, metric, rho, strategy, sign)
    # one point per budget (the latest), so a burst of retrains at one budget does not weigh more
    per_budget = frame.groupby("budget").tail(1)
    if len(per_budget) < MIN_POINTS:
        return Forecast(budget, value, rho, None, None, None, None, simulated,
                        f"need curve points at {MIN_POINTS} budgets for a trend (have {len(per_budget)})")
    x = per_budget["budget"].to_numpy(float)
    fit = _fit(x, sign * per_budget[metric].to_numpy(float))
    intercept, slope = fit.params
    target = _solve(intercept, slope, sign * rho)
    if target is None:
        return Forecast(budget, value, rho, None, None, None, None, simulated,
                        "the disparity is not falling: ρ is not on this trend")
    low_slope, high_slope = fit.conf_int(alpha=0.2)[1]
    steep, shallow = _solve(intercept, low_slope, sign * rho), _solve(intercept, high_slope, sign * rho)
    if max_budget is not None and target > max_budget:
        return Forecast(budget, value, rho, None, None, None, None, simulated,
                        f"ρ is not reached within the pool ({max_budget:,} items) on this trend")
    more = max(0, int(np.ceil(target - budget)))
    f1_then = None
    if "f1" in per_budget and per_budget["f1"].notna().sum() >= MIN_POINTS:
        f1_fit = _fit(x, per_budget["f1"].to_numpy(float))
        f1_then = float(f1_fit.params[0] + f1_fit.params[1] * np.log1p(target))
    low = None if steep is None else max(0, int(np.ceil(min(steep, max_budget or steep) - budget)))
    high = None if shallow is None or (max_budget is not None and shallow > max_budget) else \
        max(0, int(np.ceil(shallow - budget)))
    message = f"about {more:,} more labels on the current trend"
    return Forecast(budget, value, rho, more, low, high, f1_then, simulated, message)


def _simulated(simulation: pd.DataFrame | None, metric: str, rho: float, strategy: str | None,
               sign: float) -> int | None:
    if simulation is None or simulation.empty or metric not in simulation:
        return None
    frame = simulation if strategy is None or "method" not in simulation else \
        simulation[simulation["method"] == strategy]
    if frame.empty:
        return None
    mean = frame.groupby("budget")[metric].mean().sort_index()
    reached = mean[sign * mean <= sign * rho]
    return None if reached.empty else int(reached.index[0])
