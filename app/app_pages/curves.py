"""Curves: F-score and fairness as the labeling budget grows, on the held-out test set."""

import io

import pandas as pd
import streamlit as st

import state
from fairal.crowd import export_table
from fairal.forecast import labels_to_constraint
from fairal.metrics import DISPARITY_METRICS, HIGHER_IS_BETTER, LABELS
from fairal.plots import budget_figure, latest_per_budget, simulation_budget_figure, tradeoff_figure
from fairal.trainers import USES_VALIDATION

store, _admin, project = state.admin_project_page("Curves", key="curves_project")
st.caption(f"Evaluated on the project's held-out test set ({len(project.test):,} rows), "
           f"sensitive attribute **{project.row['sensitive']}**, strategy **{project.strategy_name}**, "
           f"trainers **{', '.join(project.trainer_names)}**.")

if state.worker_running():
    st.caption(":material/sync: The background worker retrains the models when labels arrive; "
               "the curves refresh every 5 s.")
else:
    st.info("No background worker runs, so models retrain inline after each label (the annotator waits "
            "for it). Start one with `python -m fairal worker` for many annotators or slow trainers "
            "(FR-Train, FORML).", icon=":material/info:")
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
    st.caption("Upload the `simulation.csv` written by `python -m fairal simulate --dataset "
               f"{project.row['dataset']} --sensitive {project.row['sensitive']} ...`; its methods are drawn "
               "as mean ± s.e. bands beside this project's curves.")
    upload = st.file_uploader("simulation.csv", type=["csv"], key="curves_simulation")
simulated = None
if upload is not None:
    try:
        simulated = pd.read_csv(upload)
        missing = {"method", "budget", "f1", metric} - set(simulated.columns)
        if missing:
            st.error(f"This file is not a simulation table: columns {sorted(missing)} are missing.")
            simulated = None
    except Exception as error:  # a malformed upload is reported, never raised
        st.error(f"Could not read the simulation file: {state.md(error)}")


#: Plotly's toolbar only while the pointer is over a chart: it otherwise covers legends and colour bars.
CHART = {"displayModeBar": "hover", "displaylogo": False}


@st.fragment(run_every="5s")
def live_curves() -> None:
    with state.store() as s:  # the fragment reruns on its own: its own connection
        frame = s.curve_frame(project.id)
    if frame.empty:
        st.info("No curve points yet: label a few items on the **Label** page.")
        return
    latest = latest_per_budget(frame)
    last = latest.sort_values(["budget", "id"] if "id" in latest.columns else ["budget"]).iloc[-1]
    columns = st.columns(4)
    columns[0].metric("labels", int(last["budget"]))
    columns[1].metric("F-score", f"{last['f1']:.3f}")
    columns[2].metric("accuracy", f"{last['accuracy']:.3f}")
    columns[3].metric(LABELS.get(metric, metric), f"{last[metric]:.3f}")
    st.caption(f"Latest point: trainer **{last['trainer']}**.")
    if threshold is not None:
        lines = []
        for trainer in project.trainer_names:
            forecast = labels_to_constraint(latest, metric=metric, rho=threshold, trainer=trainer,
                                            simulation=simulated, strategy=project.strategy_name,
                                            higher_is_better=metric in HIGHER_IS_BETTER,
                                            max_budget=len(project.pool))
            text = f"**{trainer}**: {forecast.message}"
            if forecast.more_labels:
                high = "no bound" if forecast.high is None else f"{forecast.high:,}"
                text += f" (80 % range {forecast.low:,}–{high})"
                if forecast.f1_then is not None:
                    text += f", F-score then ≈ {forecast.f1_then:.3f}"
            if forecast.simulated_budget is not None:
                text += f"; the simulation reaches ρ at {forecast.simulated_budget:,} labels"
            lines.append(text)
        st.markdown(":material/query_stats: **Labels to reach ρ** (a trend, not a promise) — " + "; ".join(lines))
    tradeoff = tradeoff_figure(frame, metric, threshold=threshold)
    tradeoff.update_layout(modebar_orientation="h")  # full width: a horizontal toolbar clears the colour bar
    st.plotly_chart(tradeoff, key="curves_tradeoff", config=CHART)
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
    table = io.StringIO()
    export_table(latest, table, format="csv")  # spreadsheet-formula safe, like every export
    st.download_button("Download the curve table (CSV)", table.getvalue().encode(),
                       file_name=f"fairal-curves-{project.id}.csv", mime="text/csv", key="curves_csv",
                       icon=":material/download:")


live_curves()
