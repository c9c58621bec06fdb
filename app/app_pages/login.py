"""Sign in, or create the first admin account of a new installation."""

import streamlit as st

from fairal import auth

import state
from literal import md

store = state.page_store()
left, _ = st.columns([1, 1])

if "login_error" in st.session_state:
    st.error(st.session_state.pop("login_error"))

if not state.has_admin(store):
    with left:
        st.title("Create the first admin account")
        st.write("This fairal installation has no admin yet. The admin creates projects and annotator "
                 "accounts; choose a name and a password (at least "
                 f"{auth.MIN_PASSWORD_LENGTH} characters). To show that you run this server, enter the "
                 "**setup code** printed in the console where `streamlit run` was started (a line "
                 "`fairal setup code: …`), or the one `python -m fairal init` prints.")
        with st.form("login_first_admin"):
            code = st.text_input("Setup code", key="login_setup_code", type="password")
            name = st.text_input("Name", key="login_new_name")
            password = st.text_input("Password", type="password", key="login_new_password")
            again = st.text_input("Password again", type="password", key="login_new_again")
            create = st.form_submit_button("Create the admin account", type="primary", key="login_create")
    if create:
        if password != again:
            left.error("The two passwords differ.")
        else:
            try:
                user = auth.create_first_admin(store, name, password, code)
            except auth.AccessDenied:
                left.error("An admin already exists; ask them to create your account.")
            except auth.AuthError as error:
                left.error(f"Could not create the account: {md(error)}.")
            else:
                state.sign_in(user, store)
                st.rerun()
    st.stop()

with left:
    st.title("Sign in to fairal")
    st.caption("Fair active labeling: label the items a fairness-aware strategy picks.")
    with st.form("login_form"):
        name = st.text_input("Name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary", key="login_submit")
if submitted:
    try:
        user = auth.authenticate(store, name, password, client=state.client_address())
    except auth.TooManyAttempts as error:  # this name or this browser's address: a growing delay
        left.error(f"{error}.")
    else:
        if user is None:
            left.error("Wrong name or password.")
        else:
            state.sign_in(user, store)
            st.rerun()

def _sso_login(*provider: str) -> None:
    """``st.login`` in a callback (outside the router's error boundary): a failure is said, not shown raw."""
    try:
        st.login(*provider)
    except Exception as error:
        st.session_state["login_error"] = state.failure_message(error, doing="signing in with SSO")


providers = state.sso_providers()
if providers is not None:
    with left:
        st.divider()
        if not providers:
            st.button("Sign in with SSO", key="login_sso", icon=":material/key:", on_click=_sso_login)
        for provider in providers:
            st.button(f"Sign in with SSO ({provider})" if len(providers) > 1 else "Sign in with SSO",
                      key=f"login_sso_{provider}", icon=":material/key:", on_click=_sso_login, args=(provider,))
        st.caption("Single sign-on accounts start as annotators; an admin assigns them to projects.")
