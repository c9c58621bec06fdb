"""Curves: F-score and disparity as the labeling budget grows, on the held-out test set."""

import streamlit as st

import state
from fairal.metrics import DISPARITY_METRICS, LABELS
from fairal.plots import budget_figure, latest_per_budget, tradeoff_figure

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
    left, right = st.columns(2)
    left.plotly_chart(budget_figure(frame, "f1"), key="curves_budget_f1")
    right.plotly_chart(budget_figure(frame, metric, threshold=threshold), key="curves_budget_disparity")
    with st.expander("Curve table"):
        st.dataframe(latest, hide_index=True)
        st.download_button("Download CSV", latest.to_csv(index=False).encode(),
                           file_name=f"fairal-curves-{project.id}.csv", mime="text/csv", key="curves_csv")


live_curves()
