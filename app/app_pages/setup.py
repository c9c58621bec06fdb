"""Setup (admins): choose the current project, or create one from a built-in data set or a CSV."""

import io

import pandas as pd
import streamlit as st

import state
from fairal.auth import AccessDenied
from fairal.datasets import DatasetError, list_datasets
from fairal.metrics import DISPARITY_METRICS, LABELS
from fairal.projects import CsvSource, ProjectError, ProjectSettings, create_project
from fairal.store import StoreError
from fairal.strategies import OFFLINE_ONLY, STRATEGIES
from fairal.trainers import TRAINERS, USES_VALIDATION

store = state.store()
user = state.require_admin_page(state.current_user(store))
st.title("Setup")

# --- choose the current project -------------------------------------------------
current = state.project_picker(store, user, key="setup_project", label="Current project")
if current is not None:
    row = current.row
    st.caption(f"{row['dataset']} · sensitive **{row['sensitive']}** · strategy **{row['strategy']}** · "
               f"trainers **{', '.join(row['trainers'])}** · budget **{row['budget']}** · "
               f"{current.overlap} annotator(s) per item · {current.scale} answers · "
               f"quiz rate {current.gold_rate:.0%} · {len(store.members(current.id))} annotator(s) assigned")

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
            st.error(f"Could not read {state.md(upload.name)}: {state.md(error)}")
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
                       value=f"{dataset_name} project {len(store.projects()) + 1}")
strategy_names = [name for name in STRATEGIES if name not in OFFLINE_ONLY]
strategy = left.selectbox("Query strategy", strategy_names, index=strategy_names.index("entropy"),
                          key="setup_strategy",
                          help="panda uses the shipped policy meta-trained on Adult (sex); "
                               "fal is FAL with fast one-step updates (exact FAL is too slow for live use)")
trainers = left.multiselect(
    "Trainers", list(TRAINERS), default=["erm"], key="setup_trainers",
    help="Each is retrained when labels arrive (by the background worker when it runs) and drawn as "
         "its own curve; the first one also ranks the pool for adaptive strategies. FR-Train and FORML "
         "use the project's validation set: the seed set until a crowd-built one exists (Crowd page). "
         "They take seconds per fit, so they are meant for the background worker.")
budget = right.number_input("Labeling budget B", min_value=1, value=400, step=50, key="setup_budget")
metric = right.selectbox("Disparity metric", list(DISPARITY_METRICS), format_func=lambda m: LABELS.get(m, m),
                         key="setup_metric")
threshold = right.number_input("Constraint ρ", min_value=0.0, max_value=1.0, value=0.04, step=0.01,
                               key="setup_threshold")

st.markdown("**Annotators**")
a, b, c = st.columns(3)
overlap = a.number_input("Annotators per item (k)", min_value=1, max_value=25, value=1, key="setup_overlap",
                         help="k > 1: each item is answered by k different annotators and their answers are "
                              "aggregated (majority vote, or the mean on the 1–4 scale); partly answered "
                              "items are finished first.")
scale = b.radio("Answer scale", ["binary", "confidence4"], horizontal=True, key="setup_scale",
                format_func={"binary": "one key per class", "confidence4": "1–4 confidence"}.get,
                help="1–4 confidence is FR-Train's crowd scale: 1 = surely negative … 4 = surely positive; "
                     "several answers are averaged and compared with 2.5.")
lease_minutes = c.number_input("Lease (minutes)", min_value=1, max_value=1440, value=10, key="setup_lease",
                               help="An item handed to an annotator is reserved for them this long; "
                                    "unanswered, it returns to the queue.")
d, e = st.columns(2)
gold_percent = d.slider("Quiz items (% of each queue)", min_value=0, max_value=50, value=0, step=5,
                        key="setup_gold_rate", format="%d%%",
                        help="Share of quiz items (seed examples, whose labels are known) mixed into each "
                             "annotator's queue; they measure answer quality (Crowd page) and never become "
                             "training labels.")
gold_rate = gold_percent / 100
quiz_feedback = e.checkbox("Tell annotators right after a quiz item whether they were right", value=True,
                           key="setup_quiz_feedback", disabled=gold_rate == 0)

with st.expander("Advanced"):
    n_initial = st.number_input("Initial labeled examples (seed set, from the meta-train half)",
                                min_value=2, value=50, key="setup_n_initial")
    split_seed = st.number_input("Split seed", min_value=0, value=0, key="setup_split_seed")
    features = st.radio("Features the models see", ["raw", "representation"], horizontal=True,
                        key="setup_features",
                        help="representation: the shipped PANDA policy's pretrained representation of Adult "
                             "(what PANDA and its 'head' learner were trained on); Adult only")

slow = [t for t in trainers if t in USES_VALIDATION]
if slow and not state.worker_running():
    st.warning(f"{', '.join(slow)} take seconds per fit and no background worker runs: every label would "
               "wait for it. Start `python -m fairal worker`.", icon=":material/warning:")

if st.button("Create project", type="primary", key="setup_create",
             disabled=source == "Upload a CSV" and csv is None):
    settings = ProjectSettings(name=name, dataset=dataset_name, sensitive=sensitive or "", strategy=strategy,
                               trainers=tuple(trainers), budget=int(budget), metric=metric,
                               threshold=float(threshold), split_seed=int(split_seed),
                               n_initial=int(n_initial), features=features, overlap=int(overlap),
                               scale=scale, gold_rate=float(gold_rate), quiz_feedback=bool(quiz_feedback),
                               lease_seconds=int(lease_minutes) * 60)
    try:
        with st.spinner("Splitting, training the first model and ranking the pool…"):
            project_id = create_project(store, settings, csv=csv, by=state.current_user(store))
    except AccessDenied as error:
        st.error(f"Only admins create projects: {state.md(error)}")
    except (ProjectError, DatasetError, StoreError, ValueError) as error:
        st.error(state.md(error))
    else:
        state.set_current_project(project_id)
        st.success(f"Created **{state.md(name)}**. Assign annotators on the **Annotators** page, "
                   "or go to **Label** to start.")
