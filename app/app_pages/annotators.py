"""Annotators (admins): accounts, roles, project assignments and password resets."""

import pandas as pd
import streamlit as st

from fairal import auth
from fairal.auth import AccessDenied, AuthError
from fairal.store import StoreError

import state
from literal import md

store = state.page_store()
admin = state.require_admin_page(state.current_user(store))
st.title("Annotators")

projects = {int(p["id"]): p["name"] for p in store.projects()}
if "ann_message" in st.session_state:
    st.success(st.session_state.pop("ann_message"))

# --- create an account -------------------------------------------------------------
with st.expander("Create an account", expanded=True, icon=":material/person_add:"):
    with st.form("ann_create", clear_on_submit=True, border=False):
        left, middle, right = st.columns(3)
        name = left.text_input("Name", key="ann_new_name")
        password = middle.text_input("Password", type="password", key="ann_new_password",
                                     help=f"at least {auth.MIN_PASSWORD_LENGTH} characters; "
                                          "tell it to the person, who can sign in right away")
        role = right.selectbox("Role", ["annotator", "admin"], key="ann_new_role",
                               help="admins see every page and project; annotators only Label, "
                                    "for the projects assigned to them")
        assigned = st.multiselect("Projects", list(projects), format_func=projects.get, key="ann_new_projects")
        create = st.form_submit_button("Create account", type="primary", key="ann_create_submit")
    if create:
        try:
            account = auth.create_account(store, name, password, role=role, by=admin)
            for project_id in assigned:
                auth.assign(store, project_id, account.id, by=admin)
        except (AuthError, AccessDenied, StoreError) as error:
            st.error(f"Could not create the account: {md(error)}")
        else:
            st.session_state["ann_message"] = (
                f"Created {account.role} **{md(account.name)}**"
                + (f", assigned to {', '.join(md(projects[p]) for p in assigned)}." if assigned else "."))
            st.rerun()

# --- list ---------------------------------------------------------------------------
accounts = auth.accounts_overview(store, by=admin)
memberships = {a["id"]: a["project_ids"] for a in accounts}

st.subheader("Accounts")
table = pd.DataFrame([{
    "name": a["name"],
    "role": a["role"],
    "sign-in": "password" if a["has_password"] else "single sign-on / none",
    "projects": ", ".join(projects[p] for p in memberships[a["id"]]) or ("all (admin)" if a["role"] == "admin"
                                                                         else "—"),
    "labels given": a["labels_given"],
} for a in accounts], columns=["name", "role", "sign-in", "projects", "labels given"])
st.dataframe(table, hide_index=True, width="stretch")

if not accounts:
    st.stop()

# --- edit one account -----------------------------------------------------------------
st.subheader("Edit an account")
by_id = {a["id"]: a for a in accounts}
chosen = st.selectbox("Account", list(by_id), key="ann_account",
                      format_func=lambda i: f"{by_id[i]['name']} ({by_id[i]['role']})")
account = by_id[chosen]
assign_tab, role_tab, password_tab = st.tabs(["Projects", "Role", "Password"])

with assign_tab:
    new = st.multiselect("Assigned projects", list(projects), default=memberships[chosen],
                         format_func=projects.get, key=f"ann_projects_{chosen}",
                         help="annotators see only these projects; removing one keeps their labels")
    if st.button("Save assignments", key="ann_save_projects", type="primary"):
        try:
            acting = state.current_user(store)
            for project_id in set(new) - set(memberships[chosen]):
                auth.assign(store, project_id, chosen, by=acting)
            for project_id in set(memberships[chosen]) - set(new):
                auth.unassign(store, project_id, chosen, by=acting)
        except (AccessDenied, StoreError) as error:
            st.error(f"Could not save: {md(error)}")
        else:
            st.session_state["ann_message"] = f"Saved the projects of **{md(account['name'])}**."
            st.rerun()

with role_tab:
    role = st.radio("Role", ["annotator", "admin"], index=["annotator", "admin"].index(account["role"]),
                    key=f"ann_role_{chosen}", horizontal=True)
    if st.button("Save role", key="ann_save_role", disabled=role == account["role"]):
        if chosen == admin.id:
            st.error("You cannot change your own role: ask another admin.")
        else:
            try:
                auth.set_role(store, chosen, role, by=state.current_user(store))
            except (AccessDenied, StoreError, ValueError) as error:
                st.error(f"Could not change the role: {md(error)}")
            else:
                st.session_state["ann_message"] = f"**{md(account['name'])}** is now {role}."
                st.rerun()

with password_tab:
    with st.form("ann_password", clear_on_submit=True, border=False):
        first = st.text_input("New password", type="password", key="ann_reset_password")
        again = st.text_input("New password again", type="password", key="ann_reset_again")
        reset = st.form_submit_button("Set the password", key="ann_reset_submit")
    if reset:
        if first != again:
            st.error("The two passwords differ.")
        else:
            try:
                auth.set_password(store, chosen, first, by=admin)
            except (AuthError, AccessDenied, StoreError) as error:
                st.error(f"Could not set the password: {md(error)}")
            else:
                st.session_state["ann_message"] = f"Set a new password for **{md(account['name'])}**."
                st.rerun()
