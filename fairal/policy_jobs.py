"""Background meta-training of PANDA policies for a project's data (queued in the app, run by the worker).

An admin queues a job for a project (:func:`queue_policy_job`); the background
worker claims the oldest queued job and runs :func:`run_policy_job`: the
project's data through :func:`fairal.panda.train.train_policy` (the same
pipeline as ``python -m fairal train-policy``), with the project's split seed,
so the policy learns from the meta-train half only, never from the project's
pool or test items. Progress goes to the store about once a second; the
policy file lands in ``<db folder>/policies/``; then the project may switch
to PANDA with it (:func:`fairal.projects.use_policy`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import cast

from fairal.panda.config import MetaConfig
from fairal.text import escape

__all__ = ["queue_policy_job", "run_policy_job", "job_config", "DEFAULT_ITERATIONS", "MAX_ITERATIONS"]

logger = logging.getLogger(__name__)

#: Meta-training iterations of a job unless the admin asks otherwise (each takes about a second on CPU).
DEFAULT_ITERATIONS = 100
MAX_ITERATIONS = 2000
#: Seconds between progress writes.
PROGRESS_EVERY = 1.0


def queue_policy_job(store, project_id: int, *, iterations: int = DEFAULT_ITERATIONS, by=None) -> int:
    """Queue meta-training a policy on the project's data; returns the job id.

    ``by``: the signed-in user (must be an admin); None for trusted local callers.
    """
    from fairal.projects import ProjectError

    if by is not None:
        from fairal.auth import require_admin

        require_admin(by)
    if not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise ProjectError(f"iterations must be an integer from 1 to {MAX_ITERATIONS}, got {iterations!r}")
    if store.path is None:
        raise ProjectError("policy jobs need a database file (the policy is written next to it)")
    busy = [j for j in store.policy_jobs(project_id) if j["status"] in ("queued", "running")]
    if busy:
        raise ProjectError(f"a policy job for this project is already {busy[0]['status']} (job {busy[0]['id']})")
    return store.add_policy_job(project_id, iterations=iterations)


def job_config(project, iterations: int) -> MetaConfig:
    """Meta-training settings for a project: its budget and seed size, tasks sized to its data."""
    from fairal.datasets import panda_split
    from fairal.panda.train import fit_task_sizes

    base = MetaConfig()
    config = replace(base, iterations=iterations, budget=min(project.budget, base.pool_size // 2),
                     n_initial=len(project.seed))
    split = panda_split(len(project.dataset), seed=int(project.row["split_seed"]))
    return fit_task_sizes(config, len(split.meta_train))


def run_policy_job(store, job: dict) -> dict:
    """Run a claimed (running) job to its end; records done with the policy path, or failed with why."""
    from fairal.panda.train import train_policy
    from fairal.projects import open_project, policy_folder

    job_id = int(job["id"])
    last = [0.0]

    def progress(iteration: int, row: dict) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or iteration == job["iterations"]:
            last[0] = now
            store.update_policy_job(job_id, iteration=iteration, message=f"meta-training, iteration {iteration}")

    def stage(message: str) -> None:
        store.update_policy_job(job_id, message=message)

    try:
        project = open_project(store, int(job["project_id"]))
        # add_policy_job refuses in-memory stores, so the folder is set (Path(None) would fail here as before).
        out = Path(cast(Path, policy_folder(store))) / f"project-{project.id}-job-{job_id}.pt"
        start = time.perf_counter()
        result = train_policy(project.dataset, job_config(project, int(job["iterations"])), out,
                              split_seed=int(project.row["split_seed"]), progress=progress, stage=stage)
        best = result.best
        message = (f"done in {time.perf_counter() - start:.0f} s; kept iteration {best['iteration']}: "
                   f"F1 {best['eval_f1']:.3f}, disparity {best['eval_disparity']:.3f} "
                   f"(random picks: F1 {best['random_eval_f1']:.3f}, disparity {best['random_eval_disparity']:.3f})")
        store.update_policy_job(job_id, status="done", iteration=int(job["iterations"]), message=message,
                                policy_path=str(out))
        logger.info("policy job %d for project %s: %s", job_id, escape(project.name), message)
    except Exception as error:  # recorded for the Setup page; the worker goes on
        logger.exception("policy job %d failed", job_id)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        store.update_policy_job(job_id, status="failed", message=f"failed: {reason}")
    return store.policy_job(job_id)
