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

__all__ = ["latest_per_budget", "budget_figure", "tradeoff_figure"]


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
                         title=f"{_label(metric)} as labels arrive")
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
                         legend=dict(orientation="h", y=-0.2),
                         title=f"{_label(disparity)} vs {_label(utility)} as the budget grows")
    return figure
