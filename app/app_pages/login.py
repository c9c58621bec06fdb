"""Sign in, or create the first admin account of a new installation."""

import streamlit as st

from fairal import auth

import state

store = state.page_store()
left, _ = st.columns([1, 1])

if "login_error" in st.session_state:
    st.error(st.session_state.pop("login_error"))

if not state.has_admin(store):
    with left:
        st.title("Create the first admin account")
        st.write("This fairal installation has no admin yet. The admin creates projects and annotator "
                 "accounts; choose a name and a password (at least "
                 f"{auth.MIN_PASSWORD_LENGTH} characters).")
        with st.form("login_first_admin"):
            name = st.text_input("Name", key="login_new_name")
            password = st.text_input("Password", type="password", key="login_new_password")
            again = st.text_input("Password again", type="password", key="login_new_again")
            create = st.form_submit_button("Create the admin account", type="primary", key="login_create")
    if create:
        if password != again:
            left.error("The two passwords differ.")
        else:
            try:
                user = auth.create_account(store, name, password, role="admin")
            except auth.AccessDenied:
                left.error("An admin already exists (signed in through single sign-on); "
                           "ask them to create your account.")
            except auth.AuthError as error:
                left.error(f"Could not create the account: {error}.")
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
    user = auth.authenticate(store, name, password)
    if user is None:
        left.error("Wrong name or password.")
    else:
        state.sign_in(user, store)
        st.rerun()

providers = state.sso_providers()
if providers is not None:
    with left:
        st.divider()
        if not providers:
            st.button("Sign in with SSO", key="login_sso", icon=":material/key:", on_click=st.login)
        for provider in providers:
            st.button(f"Sign in with SSO ({provider})" if len(providers) > 1 else "Sign in with SSO",
                      key=f"login_sso_{provider}", icon=":material/key:", on_click=st.login, args=(provider,))
        st.caption("Single sign-on accounts start as annotators; an admin assigns them to projects.")
