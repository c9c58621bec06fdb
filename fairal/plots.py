"""Plotly figures shared by the app and the command line.

All take the curve table (``Store.curve_frame``: one row per recorded
evaluation with ``budget``, ``trainer``, ``strategy`` and one column per
metric) and keep, for each trainer × strategy × budget, the latest row (an
undo followed by a new label records the same budget twice).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from fairal.metrics import HIGHER_IS_BETTER, LABELS

__all__ = ["latest_per_budget", "budget_figure", "tradeoff_figure", "simulation_budget_figure",
           "simulation_tradeoff_figure", "simulation_figures"]


def _label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " "))


def latest_per_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (trainer, strategy, budget): the most recent, sorted by budget."""
    if frame.empty:
        return frame
    order = "id" if "id" in frame.columns else None
    data = frame.sort_values(order) if order else frame
    data = data.groupby(["trainer", "strategy", "budget"], as_index=False).last()
    return data.sort_values(["trainer", "strategy", "budget"]).reset_index(drop=True)


def _series(frame: pd.DataFrame):
    for (trainer, strategy), part in latest_per_budget(frame).groupby(["trainer", "strategy"], sort=True):
        yield f"{trainer} · {strategy}", part


def budget_figure(frame: pd.DataFrame, metric: str, *, threshold: float | None = None) -> go.Figure:
    """Budget (labels collected) against one metric, one line per trainer × strategy."""
    figure = go.Figure()
    for name, part in _series(frame):
        figure.add_trace(go.Scatter(x=part["budget"], y=part[metric], mode="lines+markers", name=name))
    if threshold is not None and metric not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title="labels collected (budget)", yaxis_title=_label(metric),
                         margin=dict(l=10, r=10, t=40, b=10), legend_title_text="trainer · strategy",
                         title=f"{_label(metric)} as labels arrive",
                         modebar_orientation="v")  # keeps the toolbar off the title in narrow columns
    return figure


def tradeoff_figure(frame: pd.DataFrame, disparity: str, *, utility: str = "f1",
                    threshold: float | None = None) -> go.Figure:
    """Disparity against utility as the budget grows: one path per trainer × strategy,
    markers coloured by budget (upper-left = fair and accurate when lower disparity is better)."""
    figure = go.Figure()
    data = latest_per_budget(frame)
    budget_max = float(data["budget"].max()) if not data.empty else 1.0
    for name, part in _series(frame):
        figure.add_trace(go.Scatter(
            x=part[utility], y=part[disparity], mode="lines+markers", name=name,
            text=[f"budget {b}" for b in part["budget"]],
            hovertemplate=f"%{{text}}<br>{_label(utility)} %{{x:.3f}}<br>{_label(disparity)} %{{y:.3f}}",
            marker=dict(color=part["budget"], colorscale="Viridis", cmin=0, cmax=max(budget_max, 1.0),
                        size=9, showscale=True, colorbar=dict(title="budget")),
            line=dict(color="rgba(120,120,120,0.5)")))
    if threshold is not None and disparity not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title=_label(utility), yaxis_title=_label(disparity),
                         margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
                         legend=dict(orientation="h", y=-0.2), modebar_orientation="v",
                         title=f"{_label(disparity)} vs {_label(utility)} as the budget grows")
    return figure


# --------------------------------------------------------------------------- #
# Simulations (``fairal.simulate``): one row per method × seed × budget
# --------------------------------------------------------------------------- #

_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
            "#7f7f7f", "#bcbd22"]


def _mean_se(frame: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    grouped = frame.groupby(keys, sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["se"] = (out["std"] / out["count"].pow(0.5)).fillna(0.0)
    return out


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def simulation_budget_figure(frame: pd.DataFrame, metric: str, *, threshold: float | None = None,
                             figure: go.Figure | None = None, dash: str | None = None) -> go.Figure:
    """Budget vs a metric: mean over seeds per method, with a ±1 s.e. band.

    Pass ``figure`` to draw onto an existing figure (the app overlays a live project).
    """
    own = figure is None
    figure = go.Figure() if own else figure
    stats = _mean_se(frame, ["method", "budget"], metric)
    for i, (method, part) in enumerate(stats.groupby("method", sort=False)):
        colour = _PALETTE[i % len(_PALETTE)]
        part = part.sort_values("budget")
        figure.add_trace(go.Scatter(
            x=list(part["budget"]) + list(part["budget"])[::-1],
            y=list(part["mean"] + part["se"]) + list(part["mean"] - part["se"])[::-1],
            mode="lines", fill="toself", fillcolor=_rgba(colour, 0.15), line=dict(width=0), hoverinfo="skip",
            showlegend=False, legendgroup=method))
        figure.add_trace(go.Scatter(x=part["budget"], y=part["mean"], mode="lines", name=method,
                                    line=dict(color=colour, dash=dash), legendgroup=method))
    if not own:  # drawn onto a live figure: keep its title, axes and constraint line
        return figure
    if threshold is not None and metric not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title="labels collected (budget)", yaxis_title=_label(metric),
                         title=f"{_label(metric)} as labels arrive (mean ± s.e. over seeds)",
                         template="plotly_white", margin=dict(l=10, r=10, t=50, b=10))
    return figure


def simulation_tradeoff_figure(frame: pd.DataFrame, *, disparity: str = "demographic_parity_difference",
                               utility: str = "f1", budget: int | None = None,
                               threshold: float | None = None) -> go.Figure:
    """Disparity vs utility at one budget (the last by default), mean ± s.e. over seeds per method."""
    budget = int(frame["budget"].max()) if budget is None else budget
    at = frame[frame["budget"] == budget]
    x = _mean_se(at, ["method"], utility)
    y = _mean_se(at, ["method"], disparity)
    figure = go.Figure()
    for i, method in enumerate(x["method"]):
        xr, yr = x[x["method"] == method].iloc[0], y[y["method"] == method].iloc[0]
        figure.add_trace(go.Scatter(
            x=[xr["mean"]], y=[yr["mean"]], mode="markers+text", name=method, text=[method],
            textposition="top center", marker=dict(size=12, color=_PALETTE[i % len(_PALETTE)]),
            error_x=dict(type="data", array=[xr["se"]]), error_y=dict(type="data", array=[yr["se"]])))
    if threshold is not None and disparity not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title=_label(utility), yaxis_title=_label(disparity), showlegend=False,
                         title=f"{_label(disparity)} vs {_label(utility)} at budget {budget} (mean ± s.e.)",
                         template="plotly_white", margin=dict(l=10, r=10, t=50, b=10))
    return figure


def simulation_figures(frame: pd.DataFrame, *, threshold: float | None = None) -> dict[str, go.Figure]:
    """The standard set written by ``python -m fairal simulate`` (PANDA's Figures 1–2).

    Demographic parity is PANDA's Table 1 definition ("to overall": max_a |E[h|a] − E[h]|), the
    quantity its constraint ρ and fairlearn's ``DemographicParity(difference_bound=ρ)`` bound;
    the between-groups difference is plotted too.
    """
    dp = "demographic_parity_to_overall"
    return {
        "budget_f1": simulation_budget_figure(frame, "f1"),
        "budget_dp": simulation_budget_figure(frame, dp, threshold=threshold),
        "final_dp_vs_f1": simulation_tradeoff_figure(frame, disparity=dp, threshold=threshold),
        "final_dp_between_vs_f1": simulation_tradeoff_figure(frame, disparity="demographic_parity_difference"),
        "final_erb_vs_f1": simulation_tradeoff_figure(frame, disparity="error_rate_balance"),
    }
