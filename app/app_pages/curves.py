"""Curves: F-score and disparity as the labeling budget grows, on the held-out test set."""

import pandas as pd
import streamlit as st

import state
from fairal.metrics import DISPARITY_METRICS, LABELS
from fairal.plots import budget_figure, latest_per_budget, simulation_budget_figure, tradeoff_figure

store = state.store()
project = state.current_project(store)

st.title(f"Curves · {project.name}")
st.caption(f"Evaluated on the project's held-out test set ({len(project.test):,} rows), "
           f"sensitive attribute **{project.row['sensitive']}**, strategy **{project.strategy_name}**.")

metric_options = list(DISPARITY_METRICS)
default_metric = project.row["metric"] if project.row["metric"] in metric_options else metric_options[0]
metric = st.selectbox("Disparity metric", metric_options, index=metric_options.index(default_metric),
                      format_func=lambda m: LABELS.get(m, m), key="curves_metric")
threshold = float(project.row["threshold"]) if metric == project.row["metric"] else None

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
        st.error(f"Could not read the simulation file: {error}")


@st.fragment(run_every="5s")
def live_curves() -> None:
    frame = store.curve_frame(project.id)
    if frame.empty:
        st.info("No curve points yet: label a few items on the **Label** page.")
        return
    latest = latest_per_budget(frame)
    last = latest.iloc[-1]
    columns = st.columns(4)
    columns[0].metric("labels", int(last["budget"]))
    columns[1].metric("F-score", f"{last['f1']:.3f}")
    columns[2].metric("accuracy", f"{last['accuracy']:.3f}")
    columns[3].metric(LABELS.get(metric, metric), f"{last[metric]:.3f}")
    st.plotly_chart(tradeoff_figure(frame, metric, threshold=threshold), key="curves_tradeoff")
    by_f1, by_metric = budget_figure(frame, "f1"), budget_figure(frame, metric, threshold=threshold)
    if simulated is not None:
        simulation_budget_figure(simulated, "f1", figure=by_f1, dash="dot")
        simulation_budget_figure(simulated, metric, figure=by_metric, dash="dot")
    left, right = st.columns(2)
    left.plotly_chart(by_f1, key="curves_budget_f1")
    right.plotly_chart(by_metric, key="curves_budget_disparity")
    with st.expander("Curve table"):
        st.dataframe(latest, hide_index=True)
        st.download_button("Download CSV", latest.to_csv(index=False).encode(),
                           file_name=f"fairal-curves-{project.id}.csv", mime="text/csv", key="curves_csv")


live_curves()
