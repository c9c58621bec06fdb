"""fairal's web app: a router only (``streamlit run app/streamlit_app.py``)."""

import sys
from pathlib import Path

# Make the library importable when the app is started from a plain checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="fairal", page_icon=":material/balance:", layout="wide")

pages = {
    "Annotate": [st.Page("app_pages/label.py", title="Label", icon=":material/label:", default=True)],
    "Practitioner": [
        st.Page("app_pages/curves.py", title="Curves", icon=":material/monitoring:"),
        st.Page("app_pages/setup.py", title="Setup", icon=":material/settings:"),
    ],
}
st.navigation(pages).run()
