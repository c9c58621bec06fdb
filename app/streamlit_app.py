"""fairal's web app: a router only (``streamlit run app/streamlit_app.py``).

Access control is the page list: signed out → Login; annotator → Label;
admin → every page. The library checks the role again on every write.
"""

import sys
from pathlib import Path

# Make the library importable when the app is started from a plain checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

import state  # noqa: E402

st.set_page_config(page_title="fairal", page_icon=":material/balance:", layout="wide")
state.ensure_background_worker()

LOGIN = st.Page("app_pages/login.py", title="Sign in", icon=":material/login:", url_path="login")
LABEL = st.Page("app_pages/label.py", title="Label", icon=":material/label:", url_path="label")
CURVES = st.Page("app_pages/curves.py", title="Curves", icon=":material/monitoring:", url_path="curves")
SETUP = st.Page("app_pages/setup.py", title="Setup", icon=":material/settings:", url_path="setup")
ANNOTATORS = st.Page("app_pages/annotators.py", title="Annotators", icon=":material/group:",
                     url_path="annotators")
CROWD = st.Page("app_pages/crowd.py", title="Crowd", icon=":material/diversity_3:", url_path="crowd")

with state.store() as store:
    user = state.current_user(store)

if user is None:
    pages = {"": [LOGIN]}
elif user.is_admin:
    pages = {"Annotate": [LABEL], "Practitioner": [CURVES, SETUP, ANNOTATORS, CROWD]}
else:
    pages = {"Annotate": [LABEL]}

state.write_session_cookie()
if user is not None:
    with st.sidebar:
        st.caption(f"Signed in as **{state.md(user.name)}** · {user.role}")
        if st.button("Sign out", key="app_sign_out", icon=":material/logout:"):
            with state.store() as store:
                state.sign_out(store)
            st.rerun()

st.navigation(pages, position="sidebar" if user is not None else "hidden").run()
