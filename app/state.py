"""What every page shares: the store, the current project, the annotator.

Kept tiny on purpose: pages call library functions, never SQL or training code.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from fairal.projects import Project, ensure_default_project, open_project
from fairal.store import Store

#: Where the labels live. ``FAIRAL_DB`` overrides it (tests point it at a temp file).
DEFAULT_DB = Path(".fairal") / "fairal.db"


def db_path() -> Path:
    return Path(os.environ.get("FAIRAL_DB", DEFAULT_DB))


def store() -> Store:
    """A Store for this script run (sqlite connections belong to one thread)."""
    return Store(db_path())


@st.cache_resource(show_spinner="Preparing the demo Adult project (first start only)…")
def _default_project_id(path: str) -> int:
    with Store(path) as s:
        return ensure_default_project(s)


@st.cache_resource(show_spinner=False, max_entries=16)
def _project(path: str, project_id: int, created_at: str) -> Project:
    # Roles never change after creation: the runtime view can be shared by all sessions.
    with Store(path) as s:
        return open_project(s, project_id)


def current_project_id() -> int:
    if "fairal_project_id" not in st.session_state:
        st.session_state["fairal_project_id"] = _default_project_id(str(db_path()))
    return int(st.session_state["fairal_project_id"])


def set_current_project(project_id: int) -> None:
    st.session_state["fairal_project_id"] = int(project_id)


def current_project(s: Store) -> Project:
    project_id = current_project_id()
    try:
        row = s.project(project_id)
    except Exception:  # deleted or another database: fall back to the demo project
        st.session_state.pop("fairal_project_id", None)
        project_id = current_project_id()
        row = s.project(project_id)
    return _project(str(db_path()), project_id, row["created_at"])


def annotator_name() -> str:
    return st.session_state.get("fairal_annotator", "annotator")
