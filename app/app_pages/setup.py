"""Setup (admins): the current project (edit its settings, archive or delete it), and new projects
from a built-in data set or a CSV."""

import io
from pathlib import Path

import streamlit as st

from fairal.auth import AccessDenied
from fairal.datasets import DatasetError, list_datasets, read_csv_table, suggest_columns, suggest_id_column
from fairal.metrics import DISPARITY_METRICS, LABELS
from fairal.projects import (
    CsvSource,
    ProjectError,
    ProjectSettings,
    archive_project,
    create_project,
    delete_project,
    next_project_name,
    preview,
    restore_project,
    update_project_settings,
)
from fairal.store import StoreError
from fairal.trainers import TRAINERS, USES_VALIDATION

import panda_policies
import state
from literal import md

store = state.page_store()
user = state.require_admin_page(state.current_user(store))
st.title("Setup")
if "setup_message" in st.session_state:
    st.success(st.session_state.pop("setup_message"))

FAILURES = (AccessDenied, ProjectError, DatasetError, StoreError, ValueError)


def _done(message: str) -> None:
    st.session_state["setup_message"] = message
    st.rerun()


def _leave(project_id: int) -> None:
    """After archiving or deleting the current project: another active one becomes current."""
    others = [int(p["id"]) for p in store.projects() if int(p["id"]) != project_id]
    state.set_current_project(others[0] if others else None)


def _follow(key: str, default, options=None) -> None:
    """The widget ``key`` shows ``default`` (which may change) until the user chooses their own value
    (one of ``options``, when given)."""
    session, auto = st.session_state, f"{key}__auto"
    if (key not in session or session[key] == session.get(auto)
            or (options is not None and session[key] not in options)):
        session[key] = default
    session[auto] = default


def _edit_settings(project) -> None:
    row, pid, pool = project.row, project.id, len(project.pool)
    with st.form(f"setup_edit_{pid}", border=False):
        name = st.text_input("Project name", value=project.name, key=f"setup_edit_name_{pid}")
        a, b, c = st.columns(3)
        budget = a.number_input(f"Labeling budget B (at most the pool, {pool:,})", min_value=1, max_value=pool,
                                value=min(project.budget, pool), step=50, key=f"setup_edit_budget_{pid}")
        metrics = list(DISPARITY_METRICS)
        metric = b.selectbox("Disparity metric", metrics, format_func=lambda m: LABELS.get(m, m),
                             index=metrics.index(row["metric"]) if row["metric"] in metrics else 0,
                             key=f"setup_edit_metric_{pid}")
        threshold = c.number_input("Constraint ρ", min_value=0.0, max_value=1.0, value=float(row["threshold"]),
                                   step=0.01, key=f"setup_edit_threshold_{pid}")
        trainers = st.multiselect("Trainers", list(TRAINERS), default=project.trainer_names,
                                  key=f"setup_edit_trainers_{pid}")
        a, b, c = st.columns(3)
        overlap = a.number_input("Annotators per item (k; it can only go up)", min_value=project.overlap,
                                 max_value=25, value=project.overlap, key=f"setup_edit_overlap_{pid}")
        lease = b.number_input("Lease (minutes)", min_value=1, max_value=1440,
                               value=max(1, round(project.lease_seconds / 60)), key=f"setup_edit_lease_{pid}")
        gold = c.slider("Quiz items (% of each queue)", min_value=0, max_value=50, step=5, format="%d%%",
                        value=int(round(project.gold_rate * 100)), key=f"setup_edit_gold_{pid}")
        feedback = st.checkbox("Tell annotators right after a quiz item whether they were right",
                               value=project.quiz_feedback, key=f"setup_edit_feedback_{pid}")
        class_names = None
        if len(project.dataset.classes) == 2:
            class_names = tuple(
                column.text_input(f"Name of class {md(value)}", value=shown, key=f"setup_edit_class_{i}_{pid}")
                for i, (column, value, shown) in enumerate(zip(st.columns(2), project.dataset.classes,
                                                               project.class_names)))
        submitted = st.form_submit_button("Save settings", type="primary")
    if not submitted:
        return
    changes = {"name": name, "budget": int(budget), "trainers": trainers, "metric": metric,
               "threshold": float(threshold), "overlap": int(overlap), "lease_seconds": int(lease) * 60,
               "gold_rate": gold / 100, "quiz_feedback": bool(feedback)}
    if class_names is not None:
        changes["class_names"] = class_names
    try:
        update_project_settings(store, pid, changes, by=user)
    except FAILURES as error:
        st.error(f"Nothing was changed: {md(error)}")
    else:
        _done(f"Saved the settings of **{md(name.strip())}**.")


def _archive_or_delete(project) -> None:
    pid = project.id
    left, right = st.columns(2)
    left.markdown("**Archive**: the project leaves the project lists and the background worker stops "
                  "training it; its labels stay, and **Show archived projects** brings it back.")
    if left.button("Archive", key=f"setup_archive_{pid}", icon=":material/archive:"):
        try:
            archive_project(store, pid, by=user)
        except FAILURES as error:
            left.error(md(error))
        else:
            _leave(pid)
            _done(f"Archived **{md(project.name)}**.")
    right.markdown("**Delete**: removes the project with all its labels, models and curves, for good.")
    typed = right.text_input(f"Type the project name ({md(project.name)}) to delete it",
                             key=f"setup_delete_confirm_{pid}")
    if right.button("Delete for good", key=f"setup_delete_{pid}", icon=":material/delete_forever:",
                    disabled=not typed):
        try:
            delete_project(store, pid, confirm=typed, by=user)
        except FAILURES as error:
            right.error(md(error))
        else:
            _leave(pid)
            _done(f"Deleted **{md(project.name)}**.")


# --- the current project --------------------------------------------------------------
current = state.project_picker(store, user, key="setup_project", label="Current project")
if current is not None:
    row = current.row
    st.caption(f"{md(row['dataset'])} · sensitive **{md(row['sensitive'])}** · strategy "
               f"**{md(row['strategy'])}** · trainers **{md(', '.join(row['trainers']))}** · "
               f"budget **{row['budget']}** of a pool of **{len(current.pool):,}** items · "
               f"{current.overlap} annotator(s) per item · "
               f"{current.scale} answers · quiz rate {current.gold_rate:.0%} · "
               f"{len(store.members(current.id))} annotator(s) assigned")
    with st.expander("Edit settings", icon=":material/edit:"):
        _edit_settings(current)
    with st.expander("Archive or delete", icon=":material/inventory_2:"):
        _archive_or_delete(current)

if st.toggle("Show archived projects", key="setup_show_archived"):
    archived = [p for p in store.projects(include_archived=True) if p["archived_at"]]
    if not archived:
        st.caption("No project is archived.")
    for project in archived:
        left, middle, right = st.columns([3, 2, 1], vertical_alignment="center")
        left.markdown(f"**{md(project['name'])}** · {md(project['dataset'])}")
        middle.caption(f"archived {project['archived_at'][:16].replace('T', ' ')} UTC")
        if right.button("Restore", key=f"setup_restore_{project['id']}", icon=":material/unarchive:"):
            restore_project(store, int(project["id"]), by=user)
            _done(f"Restored **{md(project['name'])}**.")

st.divider()
st.subheader("New project")
builtin = {d["name"]: d for d in list_datasets() if d["name"] in ("adult", "compas", "german")}
source = st.radio("Data", ["Built-in data set", "Upload a CSV"], horizontal=True, key="setup_source")


@st.cache_data(max_entries=4, show_spinner=False)
def _csv_columns(data: bytes) -> tuple[list, object, object, object]:
    """The upload's columns and the suggested label, sensitive and id columns; a file load_csv
    refuses (too large, not UTF-8, malformed, a column name twice) raises its DatasetError."""
    frame, _ = read_csv_table(io.BytesIO(data))
    return list(frame.columns), *suggest_columns(frame), suggest_id_column(frame)


csv, summary, sensitive = None, None, None
if source == "Built-in data set":
    dataset_name = st.selectbox("Data set", list(builtin), key="setup_dataset",
                                format_func=lambda n: f"{n} — {builtin[n].get('description', '')}")
    sensitive_options = list(builtin[dataset_name].get("sensitive", ["sex"]))
    sensitive = st.selectbox("Sensitive attribute", sensitive_options, key="setup_sensitive")
    stem = dataset_name
    summary = preview(dataset_name, sensitive)
else:
    dataset_name = "csv"
    upload = st.file_uploader("CSV file (UTF-8, one row per example, a header row)", type=["csv"],
                              key="setup_upload")
    stem = Path(upload.name).stem if upload is not None else "csv"
    columns = None
    if upload is not None:
        data = upload.getvalue()
        try:
            columns, suggested_label, suggested_sensitive, suggested_id = _csv_columns(data)
        except DatasetError as error:  # load_csv's own words: the same check, the same message
            st.error(f"Could not read {md(upload.name)}: {md(error)}")
    if columns and len(columns) < 2:
        st.error(f"{md(upload.name)} has one column only: it needs a label and a sensitive column.")
    elif columns:
        _follow("setup_csv_label", suggested_label if suggested_label in columns else columns[0], columns)
        label = st.selectbox("Label column", columns, key="setup_csv_label")
        others = [c for c in columns if c != label]
        _follow("setup_csv_sensitive", suggested_sensitive if suggested_sensitive in others else others[0], others)
        sensitive = st.selectbox("Sensitive column", others, key="setup_csv_sensitive")
        id_options = [None] + [c for c in others if c != sensitive]
        _follow("setup_csv_id", suggested_id if suggested_id in id_options else None, id_options)
        id_column = st.selectbox("Id column (optional)", id_options, key="setup_csv_id",
                                 format_func=lambda c: "none: number the rows 0, 1, 2, …" if c is None else c,
                                 help="A column of unique whole numbers naming each row; it is neither shown nor "
                                      "a feature. A file with a repeated id is refused.")
        others = [c for c in others if c != id_column]
        if "setup_csv_display" in st.session_state:  # columns of another file, or the label now
            st.session_state["setup_csv_display"] = [c for c in st.session_state["setup_csv_display"] if c in others]
        shown = st.multiselect("Columns shown to annotators (all if empty)", others, key="setup_csv_display")
        positive = st.text_input("Positive label value (optional)", key="setup_csv_positive")
        csv = CsvSource(data=data, label=label, sensitive=sensitive,
                        display_columns=tuple(shown) or None, positive=positive.strip() or None,
                        id_column=id_column, filename=upload.name)
        try:
            summary = preview(csv=csv)
        except DatasetError as error:
            st.error(f"{md(upload.name)}: {md(error)}")

class_names = None
if summary is not None:
    st.markdown(f"**{summary.rows:,} rows** · unlabeled pool of **{summary.pool:,}** items (PANDA's split: "
                "half meta-train, for the seed set; a quarter pool; a quarter test)")
    st.dataframe(summary.balance.style.format({"positive rate": "{:.0%}"}))
    with st.expander("First rows, as annotators will see them"):
        st.dataframe(summary.sample, hide_index=True)
    if len(summary.classes) == 2:
        if st.session_state.get("setup_classes_of") != summary.classes:  # other classes: their own names
            for i in range(2):
                st.session_state.pop(f"setup_class_{i}", None)
            st.session_state["setup_classes_of"] = summary.classes
        for i, (column, value) in enumerate(zip(st.columns(2), summary.classes)):
            _follow(f"setup_class_{i}", value)
            column.text_input(f"Name of class {md(value)}", key=f"setup_class_{i}",
                              help="What the annotators' answer key for this class says")
        typed = tuple(st.session_state[f"setup_class_{i}"].strip() for i in range(2))
        class_names = None if typed == summary.classes else typed

left, right = st.columns(2)
_follow("setup_name", next_project_name(store, stem))
name = left.text_input("Project name", key="setup_name")
# panda is listed only when a policy fits the chosen data
strategy, policy_path = panda_policies.strategy_select(left, store, builtin=dataset_name, sensitive=sensitive,
                                                       csv=csv, key="setup_strategy")
trainers = left.multiselect(
    "Trainers", list(TRAINERS), default=["erm"], key="setup_trainers",
    help="Each is retrained when labels arrive (by the background worker when it runs) and drawn as "
         "its own curve; the first one also ranks the pool for adaptive strategies. FR-Train and FORML "
         "use the project's validation set: the seed set until a crowd-built one exists (Crowd page). "
         "They take seconds per fit, so they are meant for the background worker. pool_parity is the "
         "logistic regression (erm) shifted so that demographic parity holds on the whole pool, the data "
         "it will meet, not only on the picked labels; fairlearn and pool_parity keep the constraint ρ "
         "below when the disparity metric is demographic parity.")
pool = summary.pool if summary is not None else None
budget = right.number_input("Labeling budget B" + (f" (at most the pool, {pool:,})" if pool else ""), min_value=1,
                            max_value=pool, value=min(400, pool or 400), step=50, key="setup_budget")
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
             disabled=summary is None):
    settings = ProjectSettings(name=name, dataset=dataset_name, sensitive=sensitive or "", strategy=strategy,
                               policy_path=policy_path, class_names=class_names,
                               trainers=tuple(trainers), budget=int(budget), metric=metric,
                               threshold=float(threshold), split_seed=int(split_seed),
                               n_initial=int(n_initial), features=features, overlap=int(overlap),
                               scale=scale, gold_rate=float(gold_rate), quiz_feedback=bool(quiz_feedback),
                               lease_seconds=int(lease_minutes) * 60)
    try:
        with st.spinner("Splitting, training the first model and ranking the pool…"):
            project_id = create_project(store, settings, csv=csv, by=state.current_user(store))
    except AccessDenied as error:
        st.error(f"Only admins create projects: {md(error)}")
    except (ProjectError, DatasetError, StoreError, ValueError) as error:
        st.error(md(error))
    else:
        state.set_current_project(project_id)
        _done(f"Created **{md(name)}**. Assign annotators on the **Annotators** page, "
              "or go to **Label** to start.")

# --- PANDA policies for the current project (app/panda_policies.py) ---------------
if current is not None:
    st.divider()
    panda_policies.jobs_section(store, user, current)
