"""Curves: F-score and fairness as the labeling budget grows, on the held-out test set."""

import io

import pandas as pd
import streamlit as st

from fairal.crowd import export_table
from fairal.forecast import labels_to_constraint
from fairal.metrics import DISPARITY_METRICS, HIGHER_IS_BETTER, LABELS
from fairal.plots import budget_figure, latest_per_budget, latest_per_trainer, simulation_budget_figure, tradeoff_figure
from fairal.projects import labels_table
from fairal.research.simulate import read_simulation
from fairal.trainers import USES_VALIDATION

import state
from literal import md, plotly_text

store, _admin, project = state.admin_project_page("Curves", key="curves_project")
st.caption(f"Evaluated on the project's held-out test set ({len(project.test):,} rows), "
           f"sensitive attribute **{md(project.row['sensitive'])}**, strategy **{project.strategy_name}**, "
           f"trainers **{', '.join(project.trainer_names)}**.")

if state.worker_running():
    st.caption(":material/sync: The background worker retrains the models when labels arrive; "
               "this page redraws within a second of each new point.")
else:
    state.no_worker_notice()
uses_validation = [t for t in project.trainer_names if t in USES_VALIDATION]
validation = store.validation_info(project.id)
if uses_validation:
    st.caption(f"{', '.join(uses_validation)} use"
               + (f" the crowd-built validation set: {validation['size']} items by **{validation['method']}**."
                  if validation else
                  f" the seed set ({len(project.seed)} items) as validation set; build a cleaner one on "
                  "the **Crowd** page."))
elif validation:
    st.caption(f"Validation set: {validation['size']} items by **{validation['method']}** "
               "(used by FR-Train and FORML only).")

# Fairness metrics: the disparities (lower is better) and two where higher is better.
metric_options = list(DISPARITY_METRICS) + ["disparate_impact_ratio", "worst_group_accuracy"]
project_metric = project.row["metric"]
default_metric = project_metric if project_metric in metric_options else metric_options[0]
if "curves_metric" not in st.session_state or st.session_state.get("curves_metric_for") != project.id:
    st.session_state["curves_metric"] = default_metric  # each project opens on its own constraint's metric
    st.session_state["curves_metric_for"] = project.id
metric = st.selectbox("Fairness metric", metric_options,
                      format_func=lambda m: LABELS.get(m, m) + (" (the project's constraint)"
                                                                if m == project_metric else ""),
                      key="curves_metric")
threshold = float(project.row["threshold"]) if metric == project_metric else None
if threshold is not None:
    st.caption(f"The dashed line is the project's constraint ρ = {threshold:g}.")

with st.expander("Compare with simulated runs"):
    st.caption("Run a simulation of the same data and sensitive attribute, then upload its "
               "simulation.csv: its methods are drawn as mean ± s.e. bands beside this project's curves.")
    st.code(state.simulate_command(project), language="bash")
    upload = st.file_uploader("simulation.csv", type=["csv"], key="curves_simulation")
simulated = None
if upload is not None:
    try:
        simulated = read_simulation(upload, dataset=project.row["dataset"], sensitive=project.row["sensitive"],
                                    metric=metric)
        simulated["method"] = simulated["method"].map(plotly_text)  # legend names: a <a href> shows as typed
    except ValueError as error:  # a malformed or mismatched upload is reported, never raised
        st.error(f"This simulation cannot be compared with the project: {md(error)}.")
    else:
        if "sensitive" not in simulated.columns:
            st.caption("This file does not record its sensitive attribute (written by an older fairal): "
                       f"make sure it measured {md(project.row['sensitive'])}.")


#: Plotly's toolbar only while the pointer is over a chart: it otherwise covers legends and colour bars.
CHART = {"displayModeBar": "hover", "displaylogo": False}
#: How often the page asks the store whether the worker recorded a new point (one indexed MAX(id)).
POLL = "1s"
_DRAWN = "curves_drawn_point"


@st.fragment(run_every=POLL)
def watch_for_new_points() -> None:
    """Redraw the page as soon as the worker records a point (a second at most), not on a timer."""
    with state.store() as s:  # the fragment reruns on its own: its own connection
        newest = s.last_curve_point_id(project.id)
    if st.session_state.get(_DRAWN, {}).get(project.id, newest) != newest:
        st.rerun(scope="app")


def headline(frame: pd.DataFrame) -> None:
    """One row per trainer: its latest point, so the numbers never jump between trainers."""
    rows = latest_per_trainer(frame)
    name = LABELS.get(metric, metric)
    table = pd.DataFrame({"trainer": [md(t) for t in rows["trainer"]],
                          "strategy": [md(t) for t in rows["strategy"]],
                          "labels": [f"{int(b):,}" for b in rows["budget"]],
                          "F-score": [f"{v:.3f}" for v in rows["f1"]],
                          "accuracy": [f"{v:.3f}" for v in rows["accuracy"]],
                          name: [f"{v:.3f}" for v in rows[metric]]})
    if threshold is not None:
        meets = rows[metric] >= threshold if metric in HIGHER_IS_BETTER else rows[metric] <= threshold
        table[f"meets ρ = {threshold:g}"] = ["yes" if m else "no" for m in meets]
    st.table(table.set_index("trainer"), border="horizontal")


def forecasts(latest: pd.DataFrame) -> None:
    lines = []
    for trainer in project.trainer_names:
        forecast = labels_to_constraint(latest, metric=metric, rho=threshold, trainer=trainer,
                                        simulation=simulated, strategy=project.strategy_name,
                                        higher_is_better=metric in HIGHER_IS_BETTER,
                                        max_budget=len(project.pool))
        text = f"**{md(trainer)}**: {forecast.message}"
        if forecast.more_labels:
            high = "no bound" if forecast.high is None else f"{forecast.high:,}"
            text += f" (80 % range {forecast.low:,}–{high})"
            if forecast.f1_then is not None:
                text += f", F-score then ≈ {forecast.f1_then:.3f}"
        if forecast.simulated_budget is not None:
            text += f"; the simulation reaches ρ at {forecast.simulated_budget:,} labels"
        lines.append(text)
    st.markdown(":material/query_stats: **Labels to reach ρ** (a trend, not a promise) — " + "; ".join(lines))


def curves() -> None:
    with state.store() as s:
        drawn = s.last_curve_point_id(project.id)
        frame = s.curve_frame(project.id)
    st.session_state.setdefault(_DRAWN, {})[project.id] = drawn
    if frame.empty:
        st.info("No curve points yet: label a few items on the **Label** page.")
        return
    latest = latest_per_budget(frame)
    headline(frame)
    if threshold is not None:
        forecasts(latest)
    st.plotly_chart(tradeoff_figure(frame, metric, threshold=threshold), key="curves_tradeoff", config=CHART)
    by_f1, by_metric = budget_figure(frame, "f1"), budget_figure(frame, metric, threshold=threshold)
    if simulated is not None:
        simulation_budget_figure(simulated, "f1", figure=by_f1, dash="dot")
        simulation_budget_figure(simulated, metric, figure=by_metric, dash="dot")
    left, right = st.columns(2)
    for figure in (by_f1, by_metric):  # legends below: the half-width charts keep their plot area
        figure.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    left.plotly_chart(by_f1, key="curves_budget_f1", config=CHART)
    right.plotly_chart(by_metric, key="curves_budget_disparity", config=CHART)
    with st.expander("Curve table"):
        st.dataframe(latest, hide_index=True)
    left, right = st.columns(2)
    left.download_button("Download the curve table (CSV)", lambda: csv_bytes(latest),
                         file_name=f"fairal-curves-{project.id}.csv", mime="text/csv", key="curves_csv",
                         icon=":material/download:")
    right.download_button("Download the labels (CSV)", download_labels,
                          file_name=f"fairal-labels-{project.id}.csv", mime="text/csv", key="curves_labels_csv",
                          icon=":material/download:", help="One row per labeled item: the training label, "
                          "how many annotators answered and who, and the columns they saw.")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    table = io.StringIO()
    export_table(frame, table, format="csv")  # spreadsheet-formula safe, like every export
    return table.getvalue().encode()


def download_labels() -> bytes:
    """Built when the button is pressed (its own store connection: it runs beside the page)."""
    with state.store() as s:
        return csv_bytes(labels_table(s, project.id))


curves()
watch_for_new_points()
