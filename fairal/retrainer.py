"""The background trainer: retrains every project's trainers when labels change.

``python -m fairal worker`` (or the app, which starts one when none runs)
polls the store. For each project and each of its trainers, a model version
remembers the label sequence number (and validation set) it was trained on;
when labels have changed since, and the project has been quiet for
``debounce`` seconds (or the last version is older than ``max_wait``, so a
busy project still gets fresh curves), the worker claims the (project,
trainer) pair in the store, trains, evaluates on the test set, records a
model version and curve point, and re-ranks the pool when the strategy
follows the model. Claims make two workers (or a restarted one) never train
two versions of one trainer at once; a claim left by a killed worker is
taken over at once when its process is gone (the claim names its host and pid, as the lock file
does), and otherwise once stale. Everything the worker knows is in the store, so it
resumes after a crash or restart, and Streamlit reruns never touch it.

One worker per database file runs at a time: it holds an exclusive lock on
``<db>.worker.lock`` (released by the OS when the process dies), which is
also how the app tells whether one is running.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from fairal.projects import Project, open_project
from fairal.store import Store
from fairal.text import escape
from fairal.trainers import USES_VALIDATION

__all__ = ["Retrainer", "child_env", "ensure_worker", "worker_running", "stop_worker", "lock_path", "process_gone"]

logger = logging.getLogger(__name__)

#: A claim not refreshed for this long belongs to a dead worker.
STALE_CLAIM_SECONDS = 120.0
HEARTBEAT_SECONDS = 10.0
#: A running policy job not updated for this long lost its worker (progress is written every second;
#: pretraining the representation of a large data set writes nothing for a while).
STALE_JOB_SECONDS = 600.0


def lock_path(db_path: str | os.PathLike) -> Path:
    return Path(f"{db_path}.worker.lock")


def process_gone(owner: str) -> bool:
    """Whether the worker named ``owner`` (``host:pid``, as :class:`Retrainer` names itself) is gone:
    it ran on this host and no process with its pid runs (or only its zombie, killed but not yet
    reaped by its parent). A worker of another host, or an owner of another form, is never called gone."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        return False
    try:  # Linux: a killed child its parent has not reaped yet is a zombie ("Z"), not a worker
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _seconds_since(iso: str | None) -> float:
    if iso is None:
        return float("inf")
    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()


class Retrainer:
    """Retrain what is out of date; :meth:`run_once` is one pass, :meth:`run` loops."""

    def __init__(self, db_path: str | os.PathLike, *, debounce: float = 1.0, max_wait: float = 10.0,
                 poll: float = 0.5, owner: str | None = None):
        self.db_path = Path(db_path)
        self.debounce, self.max_wait, self.poll = debounce, max_wait, poll
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.opened: tuple[int, int] | None = None  # (device, inode) of the file run() has open
        self._projects: dict[int, Project] = {}
        self._stop = threading.Event()
        #: Policy jobs run in a thread while :meth:`run` loops (retraining goes on meanwhile), inline
        #: in a lone :meth:`run_once` (``worker --once`` and tests then see the job finish).
        self.jobs_in_thread = False
        self._job_thread: threading.Thread | None = None

    def stop(self) -> None:
        self._stop.set()

    def _project(self, store, project_id: int) -> Project:
        row = store.project(project_id)
        cached = self._projects.get(project_id)
        if cached is None or cached.row != row:
            cached = self._projects[project_id] = open_project(store, project_id)
        return cached

    def due(self, store, project: Project, trainer: str) -> bool:
        """Has this trainer's latest version fallen behind the labels (or validation set)?"""
        latest = store.latest_model_version(project.id, trainer)
        if latest is None:
            return True
        info = latest["info"] or {}
        validation = store.validation_info(project.id) if trainer in USES_VALIDATION else None
        behind = info.get("label_seq", -1) < store.label_seq(project.id) or (
            trainer in USES_VALIDATION and info.get("validation_at") != (validation or {}).get("created_at"))
        if not behind:
            return False
        quiet = _seconds_since(store.last_label_at(project.id)) >= self.debounce
        overdue = _seconds_since(latest["created_at"]) >= self.max_wait
        return quiet or overdue

    def train(self, store, project: Project, trainer: str) -> dict | None:
        """Claim, train, record, release; None when another worker holds the claim."""
        if not store.claim_training(project.id, trainer, self.owner, stale_seconds=STALE_CLAIM_SECONDS,
                                    holder_gone=process_gone):
            return None
        beating = threading.Event()

        def heartbeat():  # keeps a long fit's claim fresh
            with Store(self.db_path, create=False) as own:  # a deleted database is not made anew
                while not beating.wait(HEARTBEAT_SECONDS):
                    own.claim_training(project.id, trainer, self.owner, stale_seconds=STALE_CLAIM_SECONDS,
                                       holder_gone=process_gone)

        thread = threading.Thread(target=heartbeat, daemon=True) if store.path else None
        if thread:
            thread.start()
        try:
            step = project.train_step(store, trainer, extra={"worker": self.owner})
            recorded = step.recorded
            logger.info("project %s: %s trained on %d labels in %.2f s (version %s)", escape(project.name),
                        trainer, recorded["budget"], step.fit_seconds, recorded.get("model_version_id"))
            return recorded
        finally:
            beating.set()
            store.release_training(project.id, trainer, self.owner)

    def start_policy_job(self, store) -> dict | None:
        """Claim the oldest queued PANDA policy job and run it (one at a time); returns the claimed job.

        A thread rather than a child process: the job needs nothing but the database, torch releases
        the GIL in its kernels so retraining keeps its pace, and a worker killed mid-job leaves the
        job "running" until :data:`STALE_JOB_SECONDS` mark it failed.
        """
        from fairal.policy_jobs import run_policy_job

        if self._job_thread is not None and self._job_thread.is_alive():
            return None
        job = store.claim_policy_job(self.owner, stale_seconds=STALE_JOB_SECONDS)
        if job is None:
            return None
        logger.info("policy job %d (project %d, %d iterations) starts", job["id"], job["project_id"],
                    job["iterations"])
        if not self.jobs_in_thread:
            return run_policy_job(store, job)

        def work():
            with Store(self.db_path, create=False) as own:
                run_policy_job(own, job)

        self._job_thread = threading.Thread(target=work, name=f"policy-job-{job['id']}", daemon=True)
        self._job_thread.start()
        return job

    def run_once(self, store) -> list[dict]:
        """One pass over every project (after starting a queued policy job); returns what was recorded."""
        try:
            self.start_policy_job(store)
        except Exception:
            logger.exception("worker: could not start a policy job")
        recorded = []
        for row in store.projects():
            try:
                project = self._project(store, int(row["id"]))
                for trainer in project.trainer_names:
                    if self.due(store, project, trainer):
                        result = self.train(store, project, trainer)
                        if result is not None:
                            recorded.append(result)
            except Exception:  # one broken project must not stop the others
                logger.exception("worker: project %s failed", escape(row.get("name")))
        return recorded

    def run(self) -> None:
        """Poll until :meth:`stop` (or SIGTERM/SIGINT), holding the one-worker-per-database lock."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path(self.db_path), "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"another worker is already running on {self.db_path}") from None
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))  # for stop_worker
            lock.flush()
            logger.info("worker %s watching %s", self.owner, self.db_path)
            self.jobs_in_thread = True
            with Store(self.db_path) as store:
                self.opened = _file_identity(self.db_path)
                while not self._stop.is_set():
                    if _file_identity(self.db_path) != self.opened:
                        # deleted, moved or replaced (a restored backup): this connection still writes
                        # to the old file, so stop; the app starts a worker on the file now there
                        logger.warning("worker %s: %s was deleted or replaced; stopping", self.owner,
                                       self.db_path)
                        return
                    self.run_once(store)
                    self._stop.wait(self.poll)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the database file, None when it is missing."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def worker_running(db_path: str | os.PathLike) -> bool:
    """Whether a worker holds this database's lock (a dead one's lock is released by the OS)."""
    path = lock_path(db_path)
    if not path.exists():
        return False
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def stop_worker(db_path: str | os.PathLike, *, timeout: float = 15.0) -> bool:
    """SIGTERM the worker of this database (it stops mid-fit; nothing half-written), SIGKILL if it
    hangs; True if one was running."""
    if not worker_running(db_path):
        return False
    try:
        pid = int(lock_path(db_path).read_text().strip())
    except ValueError:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while worker_running(db_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    if worker_running(db_path):
        os.kill(pid, signal.SIGKILL)
        while worker_running(db_path):
            time.sleep(0.05)
    return True


def child_env() -> dict[str, str]:
    """The environment for a child Python process that imports this fairal: this checkout's root first on
    PYTHONPATH, then whatever the parent had (packages it can import stay importable)."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def ensure_worker(db_path: str | os.PathLike, *, log_path: str | os.PathLike | None = None,
                  timeout: float = 20.0) -> bool:
    """Start ``python -m fairal worker --db DB`` in its own session unless one runs; True if started.

    The child outlives Streamlit reruns and app restarts (new session, no
    parent pipe); its log goes to ``<db>.worker.log``. The database's folder is
    created first (a fresh clone has no ``.fairal/``). Raises RuntimeError, with
    the end of the worker's log, when the child exits instead of taking the lock.
    """
    db_path = Path(db_path).resolve()  # the worker runs in the repository root
    if worker_running(db_path):
        return False
    log = Path(log_path or f"{db_path}.worker.log")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    env = child_env()
    with open(log, "ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "fairal", "worker", "--db", str(db_path)], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                 env=env, cwd=str(root))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not worker_running(db_path):
        if child.poll() is not None:
            if worker_running(db_path):  # another app process started one first
                return False
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the background worker exited at once (code {child.returncode}); "
                               f"the end of {log}: " + " | ".join(tail))
        time.sleep(0.1)
    return True
