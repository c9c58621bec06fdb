"""Write ``tests/data/store-v5.db``: a small store as the release before the store package wrote it.

Generated at commit 52c9cfc (``fairal/store.py`` as one module, ``SCHEMA_VERSION = 5``, one REAL
column per metric in ``curve_points``), with::

    PYTHONPATH=. .venv/bin/python tests/data/make_store_fixture.py

``tests/test_store_migrations.py`` opens a copy with today's store and checks that the upgrade
loses nothing. Do not regenerate it with a newer release: it stands for the files already out there.
Every table holds at least one row: accounts with passwords and a sign-in, two projects (one
archived) with items, labels, an edit, an undo, a skip, leases, quiz answers, model versions and
curve points (one with NULL metrics), crowd answers, a validation set, item scores, a review request, a training claim,
a policy job and an uploaded data file.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from fairal import auth, crowd, validation
from fairal.projects import ProjectSettings, create_project, open_project
from fairal.session import LabelingSession
from fairal.store import SCHEMA_VERSION, Store

PASSWORDS = {"root": "correct horse battery", "ann": "annotator password 1"}


def _truth(project, item_ids):
    return {i: int(project.dataset.y[project.positions([i])[0]]) for i in item_ids}


def build(path: Path) -> None:
    with Store(path) as store:
        admin = auth.create_account(store, "root", PASSWORDS["root"], role="admin")
        ann = auth.create_account(store, "ann", PASSWORDS["ann"], by=admin)
        auth.start_session(store, ann)
        pid = create_project(store, ProjectSettings(name="compas", dataset="compas", sensitive="race", budget=12,
                                                    n_initial=20, trainers=("erm",), gold_rate=0.0))
        auth.assign(store, pid, ann.id, by=admin)
        project = open_project(store, pid)
        session = LabelingSession(store, pid, ann, project=project)
        for step in range(6):  # labels, each retraining: model versions and curve points
            item = session.next_item()
            value = _truth(project, [item.item_id])[item.item_id]
            if step == 2:
                session.skip(item.item_id)
                continue
            session.submit(item.item_id, value)
        session.submit(item.item_id, 1 - value)  # an edit
        session.undo()
        session.next_item()  # a live lease
        other = LabelingSession(store, pid, "bob", retrain=False, project=project)
        other.next_item()
        seeds = store.item_ids(pid, "seed")[:5]
        store.set_gold(pid, _truth(project, seeds))
        store.record_gold_answer(pid, seeds[0], ann.id, 1)
        pool = store.item_ids(pid, "pool")[:30]
        answers = crowd.simulate_crowd(_truth(project, pool), n_workers=6, answers_per_item=3, scale="binary",
                                       worker_accuracy=(0.6, 0.9), seed=0)
        data = answers[["item_id", "worker_id", "answer"]].to_csv(index=False).encode()
        validation.import_crowd_csv(store, pid, data, by=admin)
        validation.build_validation_set(store, pid, by=admin)
        latest = store.latest_model_version(pid, "erm")
        store.set_item_scores(pid, "erm", latest["id"], {i: 0.1 * n for n, i in enumerate(pool[:5])})
        validation.send_for_review(store, pid, pool[:1], by=admin)
        store.record_evaluation(pid, trainer="manual", strategy="random", budget=6, n_labels=6,
                                metrics={"f1": 0.5, "accuracy": None})  # NULL metrics, no state
        store.claim_training(pid, "erm", "fixture-worker")
        store.add_policy_job(pid, iterations=3)
        store.add_dataset_file("people.csv", b"age,y\n30,1\n")
        archived = create_project(store, ProjectSettings(name="old", dataset="compas", sensitive="race", budget=5,
                                                         n_initial=20, trainers=("erm",)))
        store.set_archived(archived, True)
    print(f"wrote {path} (schema version {SCHEMA_VERSION}, {path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    out = Path(__file__).with_name(f"store-v{SCHEMA_VERSION}.db")
    out.unlink(missing_ok=True)
    build(out)
    conn = sqlite3.connect(out)  # one self-contained file: the WAL folded in, no -wal/-shm beside it
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("VACUUM")
    conn.close()
    sys.exit(0)
