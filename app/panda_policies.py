"""The Setup page's PANDA parts: offer the strategy only where a policy fits the data, and train
policies for a project in the background (the worker runs the jobs; see fairal.policy_jobs)."""

from __future__ import annotations

import streamlit as st

from fairal.auth import AccessDenied
from fairal.datasets import DatasetError, load
from fairal.panda.strategy import DEFAULT_POLICY, TRAIN_POLICY_COMMAND, policy_file, policy_misfit
from fairal.policy_jobs import DEFAULT_ITERATIONS, MAX_ITERATIONS, queue_policy_job
from fairal.projects import ProjectError, csv_dataset, fitting_policies, use_policy
from fairal.strategies import OFFLINE_ONLY, STRATEGIES

import state
from literal import md

PANDA = "panda"


def _chosen_dataset(builtin: str | None, sensitive: str | None, csv):
    """(dataset, problem): the data the new project would use, or why it cannot be read yet."""
    try:
        if csv is not None:
            return csv_dataset(csv), None
        if builtin and builtin != "csv":
            return load(builtin, sensitive=sensitive), None
    except (DatasetError, ValueError) as error:
        return None, str(error)
    return None, "upload a CSV file first"


def strategy_select(where, store, *, builtin: str | None, sensitive: str | None, csv, key: str):
    """The query-strategy select box; ``panda`` is listed only when a policy fits the chosen data.

    Returns (strategy, policy_path or None).
    """
    dataset, problem = _chosen_dataset(builtin, sensitive, csv)
    policies = fitting_policies(store, dataset) if dataset is not None else []
    names = [n for n in STRATEGIES if n not in OFFLINE_ONLY and (n != PANDA or policies)]
    strategy = where.selectbox("Query strategy", names, index=names.index("entropy"), key=key,
                               help="panda ranks with a meta-trained policy; it is listed when a policy fits "
                                    "the chosen data (the shipped one: Adult, sex). fal is FAL with fast "
                                    "one-step updates (exact FAL is too slow for live use).")
    if not policies:
        reason = problem or policy_misfit(DEFAULT_POLICY, dataset)
        where.caption(f"PANDA is not offered: no policy fits this data ({md(reason)}). To get one, "
                      "create the project with another strategy, then train a policy for it under "
                      f"**PANDA policies** on this page; or run {md(TRAIN_POLICY_COMMAND)}.")
        return strategy, None
    if strategy != PANDA or len(policies) == 1:
        return strategy, str(policies[0])
    chosen = where.selectbox("PANDA policy", [str(p) for p in policies], key=f"{key}_policy",
                             format_func=lambda p: policy_file(p).name)
    return strategy, chosen


def jobs_section(store, user, project) -> None:
    """Train a PANDA policy on the project's data in the background; show the jobs; switch to PANDA."""
    st.subheader("PANDA policies")
    st.caption(f"PANDA ranks with a policy meta-trained on data like the project's. A policy trained here "
               f"learns from the meta-train half of {md(project.name)}'s data only (never its pool or "
               "test items); the background worker trains it while it keeps retraining the models.")
    if project.strategy_name == PANDA:
        st.caption(f"This project ranks with PANDA, policy **{md(project.policy_path.name)}**.")
    left, right = st.columns([1, 2])
    iterations = left.number_input("Meta-training iterations", min_value=1, max_value=MAX_ITERATIONS,
                                   value=DEFAULT_ITERATIONS, step=50, key="setup_policy_iterations",
                                   help="About a second each on a CPU for tasks of 2,000 pool items; the kept "
                                        "policy is the best one of the checks made every 20 iterations.")
    if right.button("Train a policy for this project", key="setup_policy_train", icon=":material/model_training:"):
        try:
            queue_policy_job(store, project.id, iterations=int(iterations), by=user)
        except (ProjectError, AccessDenied) as error:
            st.error(md(error))
    if not state.worker_running():
        st.warning("No background worker runs: a policy job waits until one starts. Start it in a terminal: "
                   f"{md(f'python -m fairal worker --db {state.db_path()}')}", icon=":material/warning:")
    active = any(j["status"] in ("queued", "running") for j in store.policy_jobs(project.id)[:5])

    @st.fragment(run_every=2 if active else None)
    def show_jobs():
        with state.store() as own:  # the fragment reruns on its own: its own connection
            for job in own.policy_jobs(project.id)[:5]:
                _show_job(own, user, project, job)

    show_jobs()


def _show_job(store, user, project, job: dict) -> None:
    title = f"Job {job['id']}"
    if job["status"] in ("queued", "running"):
        share = job["iteration"] / max(job["iterations"], 1)
        st.progress(share, text=f"{title}: {job['status']}, {job['iteration']}/{job['iterations']} iterations "
                                f"· {md(job['message'])}")
    elif job["status"] == "failed":
        st.error(f"{title} {md(job['message'])}", icon=":material/error:")
    else:
        st.success(f"{title}: {md(job['message'])}", icon=":material/check:")
        in_use = (project.strategy_name == PANDA
                  and project.policy_path.resolve() == policy_file(job["policy_path"]).resolve())
        if in_use:
            st.caption("This project ranks with this policy.")
        elif st.button("Rank this project with PANDA and this policy", key=f"setup_policy_use_{job['id']}"):
            try:
                use_policy(store, project.id, job["policy_path"], by=user)
            except (ProjectError, AccessDenied, FileNotFoundError) as error:
                st.error(md(error))
            else:
                st.success(f"{md(project.name)} now ranks its pool with PANDA. New projects on the same "
                           "data can choose this policy too.")
