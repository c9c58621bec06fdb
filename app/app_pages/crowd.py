"""Crowd (admins): import crowd answers, measure workers, aggregate, build the clean validation set."""

import io
import math

import pandas as pd
import streamlit as st

from fairal import clean_set, crowd
from fairal.auth import AccessDenied
from fairal.crowd import CrowdDataError
from fairal.store import StoreError

import state
from literal import md

store, admin, project = state.admin_project_page("Crowd", key="crowd_project")
st.caption("FR-Train builds its clean validation set from several noisy answers per item: import them or "
           "collect them here (overlap k > 1), check the workers on quiz items, aggregate, and store the "
           "result as the project's validation set (used by FR-Train and FORML).")
if "crowd_message" in st.session_state:
    st.success(st.session_state.pop("crowd_message"))

info = store.validation_info(project.id)
st.caption(f"Current validation set: **{info['size']} items** by **{info['method']}** ({info['created_at'][:16]})."
           if info else f"Current validation set: the seed set ({len(project.seed)} items); no crowd-built one yet.")

# --- import -------------------------------------------------------------------------
with st.expander("Import crowd answers (CSV)", expanded=not clean_set.imported_files(store, project.id),
                 icon=":material/upload_file:"):
    scale_text = "0 or 1" if project.scale == "binary" else "1 (surely negative) to 4 (surely positive)"
    st.caption("**Long form**: one row per answer with columns `item_id`, `worker_id`, `answer`. "
               "**Wide form**: one row per item with `item_id`, `answer_1`, `worker_id_1`, `answer_2`, … "
               f"Item ids are this project's ids (shown on the Label page); answers are {scale_text}. "
               "A file is imported completely or not at all.")
    upload = st.file_uploader("Crowd answers", type=["csv", "txt"], key="crowd_upload")
    layout = st.radio("Layout", ["auto", "long", "wide"], horizontal=True, key="crowd_format",
                      help="auto: wide when the file has numbered columns (answer_1, ans_1, worker_id_1, …)")
    st.caption("Other column names? Name them here (blank = the usual spellings). In a wide file give the stem "
               "of the numbered columns: `ans` reads `ans_1`, `ans_2`, … (FR-Train's files: item `example_idx`, "
               "answer `ans`).")
    mapping_columns = st.columns(3)
    mapping = {role: mapping_columns[i].text_input(f"{role} column", key=f"crowd_column_{role}").strip()
               for i, role in enumerate(crowd.COLUMN_ROLES)}
    if st.button("Import", type="primary", key="crowd_import", disabled=upload is None):
        try:
            n = clean_set.import_crowd_csv(store, project.id, upload.getvalue(), by=state.current_user(store),
                                            filename=upload.name, format=layout,
                                            columns={role: name for role, name in mapping.items() if name} or None)
        except (CrowdDataError, StoreError, ValueError) as error:
            st.error(f"Nothing was imported from {md(upload.name)}: {md(error)}")
        except AccessDenied as error:
            st.error(f"Only admins import answers: {md(error)}")
        else:
            st.session_state["crowd_message"] = f"Imported {n:,} answers from {md(upload.name)}."
            st.rerun()

# --- counts by source -------------------------------------------------------------------
st.subheader("Answers")
st.dataframe(clean_set.answer_sources(store, project.id), hide_index=True)
files = clean_set.imported_files(store, project.id)
if files:
    with st.popover("Remove an imported file", icon=":material/delete:"):
        doomed = st.selectbox("File", files, key="crowd_remove_source")
        if st.button("Remove its answers", key="crowd_remove"):
            clean_set.remove_crowd_file(store, project.id, doomed, by=admin)
            st.session_state["crowd_message"] = f"Removed the answers imported from {md(doomed)}."
            st.rerun()

source = st.radio("Use answers from", clean_set.SOURCES, horizontal=True, key="crowd_source",
                  format_func={"all": "everyone", "app": "app annotators", "crowd": "imported files"}.get)
answers = clean_set.project_answers(store, project.id, source=source)
if answers.empty:
    st.info("No answers from this source yet: import a crowd file, or let annotators label "
            "(with overlap k > 1 for several answers per item).")
    st.stop()


def _number(value, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


# --- agreement and worker quality ----------------------------------------------------
st.subheader("Agreement")
try:
    agreement = crowd.agreement(answers, scale=project.scale)
except ValueError as error:  # CrowdDataError; krippendorff's own ValueError when no item has two answers
    st.info(f"Agreement needs items with two or more answers ({md(error)}).")
else:
    columns = st.columns(4)
    columns[0].metric("answers", f"{agreement['n_answers']:,}",
                      help=f"{agreement['n_items']:,} items, {agreement['n_workers']:,} workers")
    columns[1].metric("Fleiss' κ", _number(agreement["fleiss_kappa"]),
                      help=f"on 0/1 decisions, {agreement['fleiss_items']} items × {agreement['fleiss_raters']} "
                           "raters")
    columns[2].metric("Krippendorff's α", _number(agreement["krippendorff_alpha"]),
                      help=f"{agreement['krippendorff_level']}, every item with two or more answers")
    columns[3].metric("mean Cohen's κ", _number(agreement["cohen_kappa_mean"]),
                      help=f"over {agreement['cohen_pairs']} worker pairs sharing ≥ {agreement['min_shared']} items")
    st.caption("0 = chance-level agreement, 1 = perfect; — = undefined (e.g. no item has two answers).")

st.subheader("Workers on quiz items")
try:
    quality = clean_set.worker_quality(store, project.id, source=source)
except CrowdDataError as error:
    quality = pd.DataFrame()
    st.error(f"Cannot rate the workers: {md(error)}")
if quality.empty:
    st.info("Nobody has answered a quiz item yet. Quiz items are the seed examples (known labels): set a "
            "quiz rate when creating the project, or include seed item ids in the crowd file.")
else:
    shown = quality.reset_index()
    shown[["accuracy", "ci_low", "ci_high"]] *= 100
    st.dataframe(shown, hide_index=True, column_config={
        "worker_id": "worker", "n_answers": "answers", "n_gold": "quiz answers", "n_correct": "right",
        "accuracy": st.column_config.NumberColumn("accuracy", format="%.0f%%"),
        "ci_low": st.column_config.NumberColumn("95% interval from", format="%.0f%%", help="Wilson interval"),
        "ci_high": st.column_config.NumberColumn("to", format="%.0f%%", help="Wilson interval"),
    })

# --- aggregation ---------------------------------------------------------------------
st.subheader("Aggregate")
methods = crowd.applicable_aggregators(project.scale, features=True)
left, middle, right = st.columns(3)
method = left.selectbox(
    "Method", methods, key="crowd_method",
    index=methods.index("learning_from_crowds"),
    help="learning_from_crowds: fits a classifier on the items' features together with each worker's confusion "
         "matrix (Raykar et al. 2010) — where workers share mistakes on misleading items, the features of the "
         "other items correct them; learning_from_crowds_difficulty: the same, but an item's answers count for "
         "less where its features make it hard (workers share their mistakes there), by how much learned from the "
         "quiz items' known labels; majority_vote: most answers win; mean_score: FR-Train's mean of 1–4 answers "
         "against 2.5; dawid_skene: one confusion matrix per worker; one_coin_dawid_skene: one accuracy per "
         "worker; dawid_skene_4: Dawid–Skene on the four answer classes; glad, mace, mmsr: crowd-kit's GLAD, "
         "MACE and M-MSR (slower: seconds)")
max_answers = middle.number_input("Use at most N answers per item (0 = all)", min_value=0, value=0,
                                  key="crowd_max_answers", help="the first N collected, as in FR-Train")
min_accuracy = right.slider("Exclude workers with quiz accuracy below", 0.0, 1.0, 0.0, 0.05,
                            key="crowd_min_accuracy", help="0 keeps everyone; a worker needs 3 quiz answers "
                                                           "to be judged")
min_answers = left.number_input("Leave out items with fewer answers than", min_value=1, value=1,
                                key="crowd_min_answers")
limit = int(max_answers) or None

with st.expander("Compare the methods with the data set's true labels", expanded=True,
                 icon=":material/table_chart:"):
    slow = st.checkbox("Include crowd-kit's slower models (GLAD, MACE, M-MSR: seconds each)", key="crowd_slow")
    compared = crowd.applicable_aggregators(project.scale, features=True, quick=not slow)
    compared += [method] if method not in compared else []
    try:
        report = clean_set.aggregation_report(store, project.id, source=source, max_answers=limit, methods=compared)
    except (CrowdDataError, ValueError) as error:
        st.error(f"Cannot compare: {md(error)}")
    else:
        shown = report.copy()
        shown[["coverage", "accuracy", "tied_share"]] *= 100
        st.dataframe(shown, hide_index=True, column_config={
            "n_items": "items",
            "coverage": st.column_config.NumberColumn("coverage", format="%.0f%%", help="share with an answer"),
            "accuracy": st.column_config.NumberColumn("accuracy", format="%.1f%%"),
            "tied_share": st.column_config.NumberColumn("ties", format="%.0f%%", help="labels decided by a "
                                                                                      "tie-break")})
        st.caption("Accuracy of each method's labels against the built-in ground truth, overall and per "
                   f"group of **{project.row['sensitive']}**: how clean a validation set it would give.")

existing = store.validation_info(project.id)
replace_ok = True
if existing:  # say what is about to be replaced, and ask
    replace_ok = st.checkbox(f"Replace the current validation set ({existing['size']} items by "
                             f"{existing['method']})", key="crowd_replace")
if st.button("Use as validation set", type="primary", key="crowd_build", icon=":material/verified:",
             disabled=not replace_ok):
    try:
        summary = clean_set.build_validation_set(
            store, project.id, by=state.current_user(store), method=method, source=source,
            min_accuracy=float(min_accuracy) or None, max_answers=limit, min_answers=int(min_answers))
    except (CrowdDataError, StoreError, ValueError) as error:
        st.error(f"No validation set was stored: {md(error)}")
    except AccessDenied as error:
        st.error(f"Only admins build validation sets: {md(error)}")
    else:
        excluded = summary["excluded_workers"]
        st.session_state["crowd_message"] = (
            f"Validation set stored: **{summary['size']} items** ({summary['positives']} positive) by "
            f"{summary['method']} from {summary['answers_used']:,} answers"
            + (f"; excluded workers: {', '.join(map(str, excluded))}." if excluded else ".")
            + " The background worker retrains FR-Train and FORML on it.")
        st.rerun()

# --- uncertain aggregated labels ----------------------------------------------------------
st.subheader("Uncertain labels")
review_left, review_right = st.columns([2, 1])
min_confidence = review_left.slider("Ask for more answers where the label's confidence is below", 0.5, 1.0, 0.8,
                                    0.05, key="crowd_min_confidence",
                                    help="the aggregator's posterior probability of the label it chose")
try:
    unsure = clean_set.uncertain_labels(store, project.id, method=method, min_confidence=min_confidence,
                                        source=source, min_accuracy=float(min_accuracy) or None,
                                        max_answers=limit, min_answers=int(min_answers))
except (CrowdDataError, ValueError) as error:
    st.caption(f"No confidence to rank by: {md(error)}")
else:
    review_right.metric("uncertain items", f"{len(unsure):,}", help=f"by {method}")
    if len(unsure):
        st.dataframe(unsure.reset_index().head(50), hide_index=True)
    if st.button(f"Send {len(unsure):,} uncertain item(s) for more answers", key="crowd_review_uncertain",
                 disabled=not len(unsure), icon=":material/group_add:"):
        try:
            sent = clean_set.send_uncertain_for_review(
                store, project.id, by=state.current_user(store), method=method, min_confidence=min_confidence,
                source=source, min_accuracy=float(min_accuracy) or None, max_answers=limit,
                min_answers=int(min_answers))
        except (AccessDenied, StoreError, CrowdDataError, ValueError) as error:
            st.error(f"Could not send: {md(error)}")
        else:
            st.session_state["crowd_message"] = f"Sent {sent} uncertain item(s) back for more answers."
            st.rerun()

# --- suspicious labels -------------------------------------------------------------------
st.subheader("Suspicious labels")
suspicious = pd.DataFrame(store.suspicious_items(project.id, limit=50))
if suspicious.empty:
    st.caption("No robust trainer has scored this project's labels yet: select FR-Train or FORML as a "
               "trainer; the worker scores every labeled item after each retraining.")
else:
    st.caption("Labeled items that FR-Train's robustness discriminator (low score: the label looks wrong "
               "for its features) or FORML's weights (low: down-weighted) doubt most. Sending one for review "
               "puts it first in line for one more annotator; its answers are then aggregated.")
    st.dataframe(suspicious, hide_index=True, column_config={
        "percentile": st.column_config.NumberColumn("percentile", format="%.2f", help="0 = most suspicious"),
        "value": "answers given", "review": st.column_config.CheckboxColumn("sent for review")})
    chosen_items = st.multiselect("Items to send for review", suspicious.loc[suspicious["review"] == 0, "item_id"]
                                  .drop_duplicates().tolist(), key="crowd_review_items")
    if st.button("Send for review", key="crowd_review", disabled=not chosen_items, icon=":material/undo:"):
        try:
            sent = clean_set.send_for_review(store, project.id, chosen_items, by=state.current_user(store))
        except (AccessDenied, StoreError) as error:
            st.error(f"Could not send: {md(error)}")
        else:
            st.session_state["crowd_message"] = f"Sent {sent} item(s) back for one more answer."
            st.rerun()

# --- export ----------------------------------------------------------------------------
st.subheader("Export")
st.caption("Cells that a spreadsheet would run as formulas (starting with =, +, -, @) are prefixed with '.")


def _export(frame: pd.DataFrame, fmt: str) -> bytes:
    buffer = io.StringIO()
    crowd.export_table(frame, buffer, format=fmt)
    return buffer.getvalue().encode("utf-8")


try:  # exactly what "Use as validation set" would store: quiz items out, exclusion applied
    aggregated, _, _ = clean_set.aggregate_labels(
        store, project.id, method=method, source=source, min_accuracy=float(min_accuracy) or None,
        max_answers=limit, min_answers=int(min_answers))
except (CrowdDataError, ValueError) as error:
    aggregated = None
    st.error(f"Cannot aggregate with {method}: {md(error)}")
tables = {"answers": answers, "labels": aggregated, "workers": quality if not quality.empty else None}
titles = {"answers": "raw answers", "labels": f"aggregated labels ({method})", "workers": "worker quality"}
for column, (what, frame) in zip(st.columns(3), tables.items()):
    column.markdown(f"**{titles[what]}**")
    if frame is None:
        column.caption("nothing to export yet")
        continue
    for fmt, mime in (("csv", "text/csv"), ("json", "application/json")):
        column.download_button(fmt.upper(), _export(frame, fmt), file_name=f"fairal-{project.id}-{what}.{fmt}",
                               mime=mime, key=f"crowd_export_{what}_{fmt}", icon=":material/download:")
