"""The background worker: retrains what labels made stale, once, under a claim; survives SIGKILL."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project, open_project
from fairal.retrainer import Retrainer, child_env, stop_worker, worker_running
from fairal.store import Store


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "fairal.db"
    with Store(path) as store:
        create_project(store, ProjectSettings(name="german", dataset="german", budget=40, n_initial=20,
                                              trainers=("erm", "forml")))
    return path


def label(store, n, name="ann"):
    session = LabelingSession(store, 1, name, retrain=False)
    data = session.project.dataset
    for _ in range(n):
        item = session.next_item()
        session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))


def test_worker_retrains_stale_trainers_once(db):
    worker = Retrainer(db, debounce=0.0)
    with Store(db) as store:
        assert worker.run_once(store) == []  # creation trained both: nothing is stale
        label(store, 5)
        recorded = worker.run_once(store)
        assert sorted(r["trainer"] for r in recorded) == ["erm", "forml"]
        assert {r["budget"] for r in recorded} == {5}
        assert worker.run_once(store) == []
        latest = store.latest_model_version(1, "forml")
        assert latest["info"]["label_seq"] == store.label_seq(1)


def test_worker_waits_for_quiet_then_catches_up(db):
    worker = Retrainer(db, debounce=60.0, max_wait=60.0)
    with Store(db) as store:
        label(store, 2)
        assert worker.run_once(store) == []  # labels are arriving: wait
        worker.debounce = 0.0
        assert len(worker.run_once(store)) == 2


def test_a_claimed_trainer_is_not_trained_twice(db):
    with Store(db) as store:
        label(store, 3)
        assert store.claim_training(1, "erm", "someone-else")
        recorded = Retrainer(db, debounce=0.0).run_once(store)
        assert [r["trainer"] for r in recorded] == ["forml"]
        assert store.training_claims(1)[0]["owner"] == "someone-else"  # left alone


def test_validation_set_change_retrains_the_robust_trainer_only(db):
    worker = Retrainer(db, debounce=0.0)
    with Store(db) as store:
        pool = store.item_ids(1, "pool")[:30]
        store.set_validation_labels(1, {i: k % 2 for k, i in enumerate(pool)}, method="majority_vote")
        assert [r["trainer"] for r in worker.run_once(store)] == ["forml"]
        assert worker.run_once(store) == []


def test_inline_retraining_and_the_worker_take_the_same_step(db, tmp_path):
    """One training step for both paths: what the inline path records (with the validation set's
    date) leaves the worker nothing to redo, and both record the same numbers for the same labels."""
    with Store(db) as store:
        pool = store.item_ids(1, "pool")[:30]
        store.set_validation_labels(1, {i: k % 2 for k, i in enumerate(pool)}, method="majority_vote")
        label(store, 4)
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:  # the same labels, another database
        source.backup(target)
    with Store(db) as store:
        inline = {r["trainer"]: r for r in open_project(store, 1).retrain(store)}
        assert Retrainer(db, debounce=0.0).run_once(store) == []  # nothing is out of date after the inline step
        infos = {t: store.latest_model_version(1, t)["info"] for t in ("erm", "forml")}
        assert infos["forml"]["validation_at"] == store.validation_info(1)["created_at"]
        assert all({"fit_seconds", "label_seq"} <= set(info) for info in infos.values())
        inline_f1 = store.curve_frame(1).set_index("id")["f1"]
    with Store(copy) as other:
        by_worker = {r["trainer"]: r for r in Retrainer(copy, debounce=0.0).run_once(other)}
        assert sorted(by_worker) == ["erm", "forml"]
        worker_f1 = other.curve_frame(1).set_index("id")["f1"]
    for trainer in ("erm", "forml"):
        assert by_worker[trainer]["budget"] == inline[trainer]["budget"] == 4
        assert worker_f1[by_worker[trainer]["curve_point_id"]] == pytest.approx(
            inline_f1[inline[trainer]["curve_point_id"]])


def test_sigkilled_worker_loses_no_label_and_a_new_one_resumes(db):
    env = child_env()
    command = [sys.executable, "-m", "fairal", "worker", "--db", str(db), "--debounce", "0", "--poll", "0.1"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not worker_running(db) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker_running(db)
        with Store(db) as store:
            label(store, 4)
            first.send_signal(signal.SIGKILL)  # mid-session, possibly mid-training
            first.wait(10)
            label(store, 4, name="bob")
            assert store.label_count(1) == 8
        assert not worker_running(db)  # the OS released the dead worker's lock
        second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            with Store(db) as store:
                while time.monotonic() < deadline:
                    latest = [store.latest_model_version(1, t) for t in ("erm", "forml")]
                    if all(v["info"].get("label_seq") == store.label_seq(1) for v in latest):
                        break
                    time.sleep(0.2)
                assert all(v["info"]["label_seq"] == store.label_seq(1) for v in latest)
                assert store.label_count(1) == 8
                assert max(p["budget"] for p in store.curve_points(1)) == 8
            assert stop_worker(db)  # SIGTERM through the pid in the lock file
            assert second.wait(10) == 0 and not worker_running(db)
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()


def test_a_worker_whose_database_was_replaced_stops_so_a_new_one_can_start(db, tmp_path):
    """A deleted database restored from a backup is a new file: the old worker's connection still
    points at the deleted one, where nothing new arrives. It stops (the app then starts a worker on
    the file now there) instead of holding the lock and retraining nothing."""
    import shutil
    import threading

    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)
    worker = Retrainer(db, debounce=0.0, poll=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while worker.opened is None and time.monotonic() < deadline:  # its store is open
            time.sleep(0.05)
        assert worker_running(db)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(backup, db)  # restored: same path, another file
        thread.join(120)  # after the round it is in (its first trains forml)
        assert not thread.is_alive() and not worker_running(db)
    finally:
        worker.stop()
