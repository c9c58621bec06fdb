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
from literal import md  # noqa: E402

ICON = str(Path(__file__).resolve().parent / "static" / "fairal.png")  # local: the app works offline

st.set_page_config(page_title="fairal", page_icon=ICON, layout="wide")
# What the boundary below cannot catch (a fragment's own rerun, a widget callback) shows no traceback or
# server path either: set here too, since .streamlit/config.toml is read only when started from the repository.
st.set_option("client.showErrorDetails", "none")

# Every page has a stable address (/label, /curves, …). A visitor who opens one before signing in
# sees the sign-in form there and lands on that page once signed in; an annotator who opens an
# admin page is told so instead of Streamlit's "Page not found".
ADDRESSES = {"label": ("app_pages/label.py", "Label", ":material/label:"),
             "curves": ("app_pages/curves.py", "Curves", ":material/monitoring:"),
             "setup": ("app_pages/setup.py", "Setup", ":material/settings:"),
             "annotators": ("app_pages/annotators.py", "Annotators", ":material/group:"),
             "crowd": ("app_pages/crowd.py", "Crowd", ":material/diversity_3:")}
PAGES = {url: st.Page(script, title=title, icon=icon, url_path=url) for url, (script, title, icon) in ADDRESSES.items()}
LOGIN = st.Page("app_pages/login.py", title="Sign in", icon=":material/login:", url_path="login")


def _login_at(url: str) -> st.Page:
    return st.Page("app_pages/login.py", title="Sign in", url_path=url, visibility="hidden")


def _home() -> None:
    """The root address: on to Label when signed in, else to the sign-in form."""
    st.switch_page(PAGES["label"] if user is not None else LOGIN)


# The root is a page of its own (Streamlit gives the default page no address of its own), so
# /label answers like every other page, and /login after signing in leads on to Label.
HOME = st.Page(_home, title="fairal", url_path="home", default=True, visibility="hidden")
SIGNED_IN_LOGIN = st.Page(_home, title="fairal", url_path="login", visibility="hidden")


def _admins_only() -> None:
    st.title("This page is for admins")
    st.write("Your account is an annotator's: the **Label** page is yours.")
    st.page_link(PAGES["label"], label="Go to Label", icon=":material/label:")


def signed_in_user():
    """The user of this browser session; an admin's first visit also prepares the demo project."""
    with state.store() as store:
        user = state.current_user(store)
        if user is not None and user.is_admin and state.needs_demo_project(store):
            with st.spinner("Preparing the demo Adult project (first start only: loading Adult, splitting it, "
                            "training the first models and ranking the pool)…", show_time=True):
                state.create_demo_project(store)
    return user


def pages_for(user) -> dict:
    """The pages a user may open (annotator: Label; admin: all), each at its stable address."""
    if user is None:
        return {"": [HOME, LOGIN] + [_login_at(url) for url in ADDRESSES]}
    if user.is_admin:
        return {"": [HOME, SIGNED_IN_LOGIN],
                "Annotate": [PAGES["label"]],
                "Practitioner": [PAGES[url] for url in ("curves", "setup", "annotators", "crowd")]}
    return {"": [HOME, SIGNED_IN_LOGIN]
            + [st.Page(_admins_only, title=ADDRESSES[url][1], url_path=url, visibility="hidden")
               for url in ("curves", "setup", "annotators", "crowd")],
            "Annotate": [PAGES["label"]]}


# One boundary for every page: a failure reaches the person as a plain sentence (a full disk, a
# damaged database, a missing one, a bug with its log reference), never as a traceback with server paths.
try:
    state.open_database()  # created on the app's first start only; later a missing file is an error
    state.ensure_background_worker()
    user = signed_in_user()
    pages = pages_for(user)
    state.write_session_cookie()
    if user is not None:
        with st.sidebar:
            st.caption(f"Signed in as **{md(user.name)}** · {user.role}")
            if st.button("Sign out", key="app_sign_out", icon=":material/logout:"):
                with state.store() as store:
                    state.sign_out(store)
                st.switch_page(SIGNED_IN_LOGIN)  # to /login: the next sign-in starts from Label
    with state.page_store_scope():  # every page's connection, closed when the page is done
        st.navigation(pages, position="sidebar" if user is not None else "hidden").run()
except Exception as error:  # Streamlit's own rerun/stop signals are BaseExceptions and pass through
    state.show_failure(error)
