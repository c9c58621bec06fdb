"""Label: one item at a time, keyboard first (1/2 = label, S = skip, U = undo)."""

import pandas as pd
import streamlit as st

import state
from fairal.session import LabelingSession

store = state.store()
project = state.current_project(store)

with st.sidebar:
    st.text_input("Annotator", key="fairal_annotator", value=state.annotator_name(),
                  help="Your name; labels are recorded per annotator.")

session = LabelingSession(store, project.id, state.annotator_name(), project=project)


def _submit(item_id: int, value: int) -> None:
    session.submit(item_id, value)
    st.session_state["label_last"] = f"Labeled item {item_id} as “{session.label_names[value]}”."
    if session.last_retrain_seconds is not None:
        st.session_state["label_retrain"] = session.last_retrain_seconds


def _skip(item_id: int) -> None:
    session.skip(item_id)
    st.session_state["label_last"] = f"Skipped item {item_id}; it comes back later."


def _undo() -> None:
    item_id = session.undo()
    st.session_state["label_last"] = (f"Undid the label of item {item_id}." if item_id is not None
                                      else "Nothing to undo.")


st.title(f"Label · {project.name}")
progress = session.progress()
st.progress(min(progress.labeled / progress.budget, 1.0),
            text=f"{progress.labeled} / {progress.budget} labels ({progress.labeled_by_me} by you)")

if "label_last" in st.session_state:
    retrain = st.session_state.get("label_retrain")
    st.caption(st.session_state["label_last"]
               + (f" Model retrained in {retrain * 1000:.0f} ms." if retrain is not None else ""))

item = session.next_item()
if item is None:
    st.success(f"The budget of {progress.budget} labels is reached. See the **Curves** page.")
    st.button("Undo last label", key="label_undo_done", shortcut="U", on_click=_undo)
    st.stop()

dataset = project.dataset
st.markdown(f"**What is the {dataset.label_name} of this person?**"
            if project.row["dataset"] in ("adult", "compas", "german") else
            f"**{dataset.label_name}?**")
table = pd.DataFrame({"attribute": item.display.index, "value": item.display.astype(str).values})
st.table(table.set_index("attribute"), border="horizontal")

reason = f"Item {item.item_id}"
if item.rank is not None:
    reason += f" · rank {item.rank + 1} of the pool by **{project.strategy_name}**"
if item.score is not None:
    reason += f" (score {item.score:.3f})"
st.caption(reason)

columns = st.columns(len(session.label_names) + 2)
for value, name in enumerate(session.label_names):
    columns[value].button(name, key=f"label_value_{value}", type="primary", shortcut=str(value + 1),
                          on_click=_submit, args=(item.item_id, value), width="stretch")
columns[-2].button("Skip", key="label_skip", shortcut="S", on_click=_skip, args=(item.item_id,),
                   width="stretch")
columns[-1].button("Undo", key="label_undo", shortcut="U", on_click=_undo, width="stretch")
st.caption("Keyboard: " + ", ".join(f"**{i + 1}** = {n}" for i, n in enumerate(session.label_names))
           + ", **S** = skip, **U** = undo the last label.")
