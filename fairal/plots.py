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

__all__ = ["latest_per_budget", "latest_per_trainer", "budget_figure", "tradeoff_figure",
           "simulation_budget_figure", "simulation_tradeoff_figure", "simulation_figures"]


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


#: The i-th series of any chart (a trainer, a simulated method): colour, marker and dash, so that
#: series differ by more than colour alone.
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
            "#7f7f7f", "#bcbd22"]
_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon", "triangle-down",
            "hexagon"]
_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]


def _series(frame: pd.DataFrame):
    """(name, style index, rows in budget order) per trainer × strategy."""
    data = latest_per_budget(frame)
    for i, ((trainer, strategy), part) in enumerate(data.groupby(["trainer", "strategy"], sort=True)):
        yield f"{trainer} · {strategy}", i, part.sort_values("budget")


def _style(i: int) -> dict:
    return {"colour": _PALETTE[i % len(_PALETTE)], "symbol": _SYMBOLS[i % len(_SYMBOLS)],
            "dash": _DASHES[i % len(_DASHES)]}


def budget_figure(frame: pd.DataFrame, metric: str, *, threshold: float | None = None) -> go.Figure:
    """Budget (labels collected) against one metric, one line per trainer × strategy."""
    figure = go.Figure()
    for name, i, part in _series(frame):
        style = _style(i)
        figure.add_trace(go.Scatter(x=part["budget"], y=part[metric], mode="lines+markers", name=name,
                                    line=dict(color=style["colour"], dash=style["dash"]),
                                    marker=dict(symbol=style["symbol"], color=style["colour"])))
    if threshold is not None and metric not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title="labels collected (budget)", yaxis_title=_label(metric),
                         margin=dict(l=10, r=10, t=40, b=10), legend_title_text="trainer · strategy",
                         title=f"{_label(metric)} as labels arrive",
                         modebar_orientation="v")  # keeps the toolbar off the title in narrow columns
    return figure


def _labelled_budgets(budgets: pd.Series, most: int = 4) -> set:
    """The budgets whose markers carry a text label: the first, the last and a few evenly between."""
    values = list(budgets)
    if len(values) <= most:
        return set(values)
    picks = {round(k * (len(values) - 1) / (most - 1)) for k in range(most)}
    return {values[k] for k in picks}


def tradeoff_figure(frame: pd.DataFrame, disparity: str, *, utility: str = "f1",
                    threshold: float | None = None) -> go.Figure:
    """Disparity against utility as the budget grows: one path per trainer × strategy, in budget order.

    Each trainer has its own colour, marker and dash; markers grow with the budget, a few carry
    their budget as text ("n=…"), the latest one is ringed, and hovering shows every value
    (upper-left = fair and accurate when lower disparity is better).
    """
    figure = go.Figure()
    data = latest_per_budget(frame)
    budget_max = max(float(data["budget"].max()), 1.0) if not data.empty else 1.0
    for name, i, part in _series(frame):
        style = _style(i)
        labelled = _labelled_budgets(part["budget"])
        figure.add_trace(go.Scatter(
            x=part[utility], y=part[disparity], mode="lines+markers+text", name=name, legendgroup=name,
            text=[f"n={b}" if b in labelled else "" for b in part["budget"]],
            textposition="top center" if i % 2 == 0 else "bottom center",
            textfont=dict(color=style["colour"], size=11),
            customdata=part["budget"].astype(int).tolist(),  # plain numbers: read back as such by the browser
            hovertemplate=(f"<b>{name}</b><br>budget %{{customdata}}<br>{_label(utility)} %{{x:.3f}}"
                           f"<br>{_label(disparity)} %{{y:.3f}}<extra></extra>"),
            line=dict(color=_rgba(style["colour"], 0.45), dash=style["dash"], width=1.5),  # markers lead
            marker=dict(symbol=style["symbol"], color=style["colour"], opacity=0.85,
                        size=[7 + 11 * float(b) / budget_max for b in part["budget"]])))
        last = part.iloc[-1]
        figure.add_trace(go.Scatter(
            x=[last[utility]], y=[last[disparity]], mode="markers", legendgroup=name, showlegend=False,
            hoverinfo="skip", marker=dict(symbol="circle-open", size=26, color=style["colour"],
                                          line=dict(width=2))))
    if threshold is not None and disparity not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}", annotation_position="bottom left")
    figure.update_layout(xaxis_title=_label(utility), yaxis_title=_label(disparity),
                         margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
                         legend=dict(orientation="h", y=-0.2, title_text="trainer · strategy"),
                         modebar_orientation="v",
                         title=(f"{_label(disparity)} vs {_label(utility)} as the budget grows "
                                "(marker size = labels; ringed = latest)"))
    return figure


def latest_per_trainer(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trainer × strategy: its point at the largest budget (the headline numbers)."""
    data = latest_per_budget(frame)
    if data.empty:
        return data
    return data.groupby(["trainer", "strategy"], as_index=False).last().reset_index(drop=True)


# --------------------------------------------------------------------------- #
# Simulations (``fairal.research.simulate``): one row per method × seed × budget
# --------------------------------------------------------------------------- #

def _mean_se(frame: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    grouped = frame.groupby(keys, sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["se"] = (out["std"] / out["count"].pow(0.5)).fillna(0.0)
    return out


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _simulation_title(text: str, frame: pd.DataFrame) -> str:
    """``text`` over a line naming the data set and sensitive attribute (the table's columns, when present)."""
    about = [prefix + ", ".join(map(str, pd.unique(frame[column].dropna())))
             for column, prefix in (("dataset", ""), ("sensitive", "sensitive attribute: ")) if column in frame.columns]
    return f"{text}<br><sup>{' · '.join(about)}</sup>" if about else text


def simulation_budget_figure(frame: pd.DataFrame, metric: str, *, threshold: float | None = None,
                             figure: go.Figure | None = None, dash: str | None = None) -> go.Figure:
    """Budget vs a metric: mean over seeds per method, with a ±1 s.e. band.

    Pass ``figure`` to draw onto an existing figure (the app overlays a live project).
    """
    own = figure is None
    figure = go.Figure() if figure is None else figure
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
                         title=_simulation_title(f"{_label(metric)} as labels arrive (mean ± s.e. over seeds)", frame),
                         template="plotly_white", margin=dict(l=10, r=10, t=80, b=10))
    return figure


def simulation_tradeoff_figure(frame: pd.DataFrame, *, disparity: str = "demographic_parity_difference",
                               utility: str = "f1", budget: int | None = None,
                               threshold: float | None = None) -> go.Figure:
    """Disparity vs utility at one budget (the last by default), mean ± s.e. over seeds per method.

    Methods are told apart by colour and marker in a legend, not by text next to the points:
    methods often land close together (random and entropy on Adult), where text labels overlap.
    """
    budget = int(frame["budget"].max()) if budget is None else budget
    at = frame[frame["budget"] == budget]
    x = _mean_se(at, ["method"], utility)
    y = _mean_se(at, ["method"], disparity)
    figure = go.Figure()
    for i, method in enumerate(x["method"]):
        xr, yr = x[x["method"] == method].iloc[0], y[y["method"] == method].iloc[0]
        figure.add_trace(go.Scatter(
            x=[xr["mean"]], y=[yr["mean"]], mode="markers", name=method,
            marker=dict(size=12, color=_PALETTE[i % len(_PALETTE)], symbol=_SYMBOLS[i % len(_SYMBOLS)],
                        opacity=0.8),  # coinciding methods show through each other
            error_x=dict(type="data", array=[xr["se"]]), error_y=dict(type="data", array=[yr["se"]]),
            hovertemplate=(f"<b>{method}</b><br>{_label(utility)} %{{x:.3f}} ± {xr['se']:.3f}"
                           f"<br>{_label(disparity)} %{{y:.3f}} ± {yr['se']:.3f}<extra></extra>")))
    if threshold is not None and disparity not in HIGHER_IS_BETTER:
        figure.add_hline(y=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"constraint ρ = {threshold:g}")
    figure.update_layout(xaxis_title=_label(utility), yaxis_title=_label(disparity), showlegend=True,
                         legend_title_text="method",
                         title=_simulation_title(
                             f"{_label(disparity)} vs {_label(utility)} at budget {budget} (mean ± s.e.)", frame),
                         template="plotly_white", margin=dict(l=10, r=10, t=80, b=10))
    return figure


#: Columns :func:`simulation_figures` draws from (besides the table's ``dataset`` and ``sensitive``).
_SIMULATION_COLUMNS = ("method", "budget", "f1", "demographic_parity_to_overall", "demographic_parity_difference",
                       "error_rate_balance")


def simulation_figures(frame: pd.DataFrame, *, threshold: float | None = None) -> dict[str, go.Figure]:
    """The standard set written by ``python -m fairal simulate`` (PANDA's Figures 1–2).

    Demographic parity is PANDA's Table 1 definition ("to overall": max_a |E[h|a] − E[h]|), the
    quantity its constraint ρ and fairlearn's ``DemographicParity(difference_bound=ρ)`` bound;
    the between-groups difference is plotted too. Titles name the data set and sensitive attribute
    from the ``dataset`` and ``sensitive`` columns (tables written before the latter lack it).
    """
    missing = [c for c in _SIMULATION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a simulation table needs the columns {', '.join(missing)}")
    if frame.empty:
        raise ValueError("the simulation table has no rows")
    dp = "demographic_parity_to_overall"
    return {
        "budget_f1": simulation_budget_figure(frame, "f1"),
        "budget_dp": simulation_budget_figure(frame, dp, threshold=threshold),
        "final_dp_vs_f1": simulation_tradeoff_figure(frame, disparity=dp, threshold=threshold),
        "final_dp_between_vs_f1": simulation_tradeoff_figure(frame, disparity="demographic_parity_difference"),
        "final_erb_vs_f1": simulation_tradeoff_figure(frame, disparity="error_rate_balance"),
    }
