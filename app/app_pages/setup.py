"""Setup: choose a project, or create one from a built-in data set or a CSV."""

import io

import pandas as pd
import streamlit as st

import state
from fairal.datasets import DatasetError, list_datasets
from fairal.metrics import DISPARITY_METRICS, LABELS
from fairal.projects import CsvSource, ProjectError, ProjectSettings, create_project
from fairal.strategies import OFFLINE_ONLY, STRATEGIES
from fairal.trainers import NEEDS_VALIDATION, TRAINERS

store = state.store()
st.title("Setup")

# --- choose the current project -------------------------------------------------
projects = store.projects()
current = state.current_project_id()
names = {p["id"]: f"{p['name']} · {p['dataset']} · {p['strategy']} · B={p['budget']}" for p in projects}
ids = list(names)
chosen = st.selectbox("Current project", ids, index=ids.index(current) if current in ids else 0,
                      format_func=names.get, key="setup_project")
if chosen != current:
    state.set_current_project(chosen)
    st.rerun()

st.divider()
st.subheader("New project")
builtin = {d["name"]: d for d in list_datasets() if d["name"] in ("adult", "compas", "german")}
source = st.radio("Data", ["Built-in data set", "Upload a CSV"], horizontal=True, key="setup_source")

csv = None
if source == "Built-in data set":
    dataset_name = st.selectbox("Data set", list(builtin), key="setup_dataset",
                                format_func=lambda n: f"{n} — {builtin[n].get('description', '')}")
    sensitive_options = list(builtin[dataset_name].get("sensitive", ["sex"]))
    sensitive = st.selectbox("Sensitive attribute", sensitive_options, key="setup_sensitive")
else:
    dataset_name = "csv"
    upload = st.file_uploader("CSV file (UTF-8, one row per example, a header row)", type=["csv"],
                              key="setup_upload")
    sensitive = None
    if upload is not None:
        data = upload.getvalue()
        try:
            header = pd.read_csv(io.BytesIO(data), nrows=50)
        except Exception as error:  # shown to the user; load_csv gives the precise reason on create
            st.error(f"Could not read {upload.name}: {error}")
            header = None
        if header is not None:
            columns = list(header.columns)
            label = st.selectbox("Label column", columns, key="setup_csv_label")
            sensitive = st.selectbox("Sensitive column", [c for c in columns if c != label],
                                     key="setup_csv_sensitive")
            shown = st.multiselect("Columns shown to annotators (all if empty)",
                                   [c for c in columns if c != label], key="setup_csv_display")
            positive = st.text_input("Positive label value (optional)", key="setup_csv_positive")
            csv = CsvSource(data=data, label=label, sensitive=sensitive,
                            display_columns=tuple(shown) or None, positive=positive or None,
                            filename=upload.name)

left, right = st.columns(2)
name = left.text_input("Project name", key="setup_name",
                       value=f"{dataset_name} project {len(projects) + 1}")
strategy_names = [name for name in STRATEGIES if name not in OFFLINE_ONLY]
strategy = left.selectbox("Query strategy", strategy_names, index=strategy_names.index("entropy"),
                          key="setup_strategy",
                          help="panda uses the shipped policy meta-trained on Adult (sex); "
                               "fal is FAL with fast one-step updates (exact FAL is too slow for live use)")
trainers = left.multiselect("Trainers", [t for t in TRAINERS if t not in NEEDS_VALIDATION], default=["erm"],
                            key="setup_trainers",
                            help="retrained after every label; FR-Train needs a clean validation set "
                                 "(built with the crowd tools, coming next) and is offered then")
budget = right.number_input("Labeling budget B", min_value=1, value=400, step=50, key="setup_budget")
metric = right.selectbox("Disparity metric", list(DISPARITY_METRICS), format_func=lambda m: LABELS.get(m, m),
                         key="setup_metric")
threshold = right.number_input("Constraint ρ", min_value=0.0, max_value=1.0, value=0.04, step=0.01,
                               key="setup_threshold")
with st.expander("Advanced"):
    n_initial = st.number_input("Initial labeled examples (seed set, from the meta-train half)",
                                min_value=2, value=50, key="setup_n_initial")
    split_seed = st.number_input("Split seed", min_value=0, value=0, key="setup_split_seed")
    features = st.radio("Features the models see", ["raw", "representation"], horizontal=True,
                        key="setup_features",
                        help="representation: the shipped PANDA policy's pretrained representation of Adult "
                             "(what PANDA and its 'head' learner were trained on); Adult only")

if st.button("Create project", type="primary", key="setup_create",
             disabled=source == "Upload a CSV" and csv is None):
    settings = ProjectSettings(name=name, dataset=dataset_name, sensitive=sensitive or "", strategy=strategy,
                               trainers=tuple(trainers), budget=int(budget), metric=metric,
                               threshold=float(threshold), split_seed=int(split_seed),
                               n_initial=int(n_initial), features=features)
    try:
        with st.spinner("Splitting, training the first model and ranking the pool…"):
            project_id = create_project(store, settings, csv=csv)
    except (ProjectError, DatasetError, ValueError) as error:
        st.error(str(error))
    else:
        state.set_current_project(project_id)
        st.success(f"Created **{name}**. Go to **Label** to start.")
