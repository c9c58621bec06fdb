"""Label: one item at a time, keyboard first (1/2 or 1–4 = answer, S = skip, U = undo)."""

import pandas as pd
import streamlit as st

from fairal.auth import AccessDenied
from fairal.labeling import LabelingSession
from fairal.store import StoreError

import state
from literal import md

store = state.page_store()
user = state.current_user(store)
if user is None:
    st.stop()

with st.sidebar:
    project = state.project_picker(store, user, key="label_project")
if project is None:
    st.title("Label")
    st.stop()

# With the background worker, a submit only commits the label: the next item never waits for training.
retrain = not state.worker_running()
# One session object per (user, project): it remembers a quiz item handed out between two reruns.
session_key = (user.id, user.role, project.id, retrain, str(project.row))  # an edited project: a new session
session = st.session_state.get("label_session")
if session is None or st.session_state.get("label_session_key") != session_key:
    try:
        session = LabelingSession(store, project.id, user, retrain=retrain, project=project)
    except AccessDenied as error:
        st.error(f"You cannot label this project: {md(error)}")
        st.stop()
    st.session_state["label_session"], st.session_state["label_session_key"] = session, session_key
session.store = store  # sqlite connections are opened per script run
names, values = session.label_names, session.label_values


def _name_of(value: int) -> str:
    return md(names[values.index(value)] if value in values else value)


def _guarded(action):
    def run(*args):  # a key press's callback: it runs before the page, outside the router's boundary
        try:
            with state.store() as own:  # the page's store of the run that drew the button is closed by now
                current = state.current_user(own)  # signed out elsewhere since the page was drawn?
                if current is None or current.id != session.user.id:
                    return  # nothing is stored; the page run that follows shows the sign-in form
                session.store = own
                action(*args)
        except Exception as error:
            st.session_state["label_error"] = state.failure_message(error, doing="that")
    return run


@_guarded
def _submit(item_id: int, value: int) -> None:
    result = session.submit(item_id, value)
    if isinstance(result, dict):  # a quiz item: never a training label
        if project.quiz_feedback:
            expected = project.class_names[result["gold"]]
            st.session_state["label_toast"] = (
                ("Quiz item: right!", ":material/check_circle:") if result["correct"] else
                (f"Quiz item: the expected answer was “{md(expected)}”.", ":material/info:"))
        st.session_state["label_last"] = f"Answered quiz item {item_id} as “{_name_of(value)}”."
        return
    st.session_state["label_last"] = f"Labeled item {item_id} as “{_name_of(value)}”."
    if retrain and session.last_retrain_seconds is not None:
        st.session_state["label_last"] += f" Model retrained in {session.last_retrain_seconds * 1000:.0f} ms."


@_guarded
def _skip(item_id: int) -> None:
    session.skip(item_id)
    st.session_state["label_last"] = f"Skipped item {item_id}; it comes back later."


@_guarded
def _undo() -> None:
    item_id = session.undo()
    st.session_state["label_last"] = (f"Undid the label of item {item_id}: answer it again."
                                      if item_id is not None else "Nothing to undo.")


st.title(f"Label · {md(project.name)}")
if "label_error" in st.session_state:
    st.error(st.session_state.pop("label_error"), icon=":material/error:")  # escaped when it was made
if "label_toast" in st.session_state:
    message, icon = st.session_state.pop("label_toast")
    st.toast(message, icon=icon)

progress = session.progress()
st.progress(min(progress.labeled / max(progress.budget, 1), 1.0),
            text=f"{progress.labeled} / {progress.budget} labels ({progress.labeled_by_me} by you)")
if "label_last" in st.session_state:
    st.caption(st.session_state["label_last"])

try:
    item = session.next_item()
except (AccessDenied, StoreError) as error:
    st.error(f"No item for you: {md(error)}")
    st.stop()

if item is None:
    if progress.done:
        st.success(f"The budget of {progress.budget} labels is reached. Thank you!"
                   + (" See the **Curves** page." if user.is_admin else ""))
    else:
        st.info("No item is free for you right now: the remaining ones are being answered by other "
                "annotators (or you answered them already). Come back in a few minutes.")
    st.button("Undo my last label", key="label_undo_done", shortcut="U", on_click=_undo)
    st.stop()

dataset = project.dataset
question = (f"What is the {md(dataset.label_name)} of this person?"  # a CSV's column name: escaped
            if project.row["dataset"] in ("adult", "compas", "german") else f"{md(dataset.label_name)}?")
st.markdown(f"**{question}**" + (" How sure are you?" if project.scale == "confidence4" else ""))
# Table cells are Markdown: data values such as ">= 200 DM" are escaped to show as typed.
table = pd.DataFrame({"attribute": [md(a) for a in item.display.index],
                      "value": [md(v) for v in item.display.astype(str).values]})
st.table(table.set_index("attribute"), border="horizontal")

if item.gold:
    reason = (f"Item {item.item_id} · **quiz item**: its answer is known; it measures labeling "
              "quality and never becomes a training label")
else:
    reason = f"Item {item.item_id}"
    if item.rank is not None:
        reason += f" · rank {int(item.rank) + 1} of the pool by **{project.strategy_name}**"
    if item.score is not None:
        reason += f" (score {float(item.score):.3f})"
    if project.overlap > 1:
        others = item.answers
        reason += (f" · {others} of {project.overlap} annotators answered it already" if others else
                   f" · you are the first of {project.overlap} annotators on it")
st.caption(reason)

# Two classes: one row [answer, answer, skip, undo]; the 1–4 scale: its four answers get the row to themselves.
answer_columns = st.columns(len(names) + 2 if len(names) <= 2 else len(names))
for i, (value, name) in enumerate(zip(values, names)):
    answer_columns[i].button(md(name), key=f"label_value_{i}", type="primary", shortcut=str(i + 1),
                             on_click=_submit, args=(item.item_id, value), width="stretch")
action_columns = answer_columns[-2:] if len(names) <= 2 else st.columns(len(names))[:2]
action_columns[0].button("Skip", key="label_skip", shortcut="S", on_click=_skip, args=(item.item_id,),
                         width="stretch")
action_columns[1].button("Undo", key="label_undo", shortcut="U", on_click=_undo, width="stretch")
st.caption("Keyboard: " + ", ".join(f"**{i + 1}** = {md(n)}" for i, n in enumerate(names))
           + ", **S** = skip, **U** = undo your last label.")
if retrain:
    st.caption("Models retrain after each label here (no background worker runs).")
