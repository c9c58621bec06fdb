"""Many annotators: accounts and access, leases and overlap, quiz items, the 1–4 scale, validation sets."""

import threading
import time

import numpy as np
import pytest

from fairal import auth
from fairal.auth import AccessDenied, AuthError
from fairal.labeling import LabelingSession
from fairal.projects import ProjectError, ProjectSettings, create_project, open_project
from fairal.store import NotFoundError, Store, StoreError


def german(store, name="german", **settings):
    return create_project(store, ProjectSettings(name=name, dataset="german", budget=30, n_initial=20, **settings))


@pytest.fixture
def admin(store):
    return auth.create_account(store, "root", "correct horse battery", role="admin")


def annotator(store, admin, name, project_id=None):
    user = auth.create_account(store, name, f"{name}-password", by=admin)
    if project_id is not None:
        store.add_member(project_id, user.id)
    return user


def truth(session, item):
    data = session.project.dataset
    return int(data.y[data.positions([item.item_id])[0]])


# ----------------------------------------------------------------- accounts


def test_passwords_are_hashed_with_argon2_and_verified(store, admin):
    stored = store.password_hash(admin.id)
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert auth.authenticate(store, "root", "correct horse battery") == admin
    assert auth.authenticate(store, "root", "wrong password!") is None
    assert auth.authenticate(store, "nobody", "correct horse battery") is None


def test_account_rules(store, admin):
    with pytest.raises(AuthError, match="at least 8"):
        auth.create_account(store, "ann", "short", by=admin)
    with pytest.raises(AccessDenied, match="only an admin"):  # bootstrap works once only
        auth.create_account(store, "second-root", "another password")
    ann = annotator(store, admin, "ann")
    with pytest.raises(AccessDenied, match="admin"):
        auth.create_account(store, "eve", "eve-password", by=ann)
    with pytest.raises(AuthError, match="already exists"):
        auth.create_account(store, "ann", "other-password", by=admin)
    with pytest.raises(AuthError, match="line breaks"):
        auth.create_account(store, "bad\nname", "password123", by=admin)
    with pytest.raises(AccessDenied, match="own password"):
        auth.set_password(store, admin.id, "hijacked-password", by=ann)
    auth.set_password(store, ann.id, "a new password", by=ann)
    assert auth.authenticate(store, "ann", "a new password") == ann


def test_annotators_reach_only_their_projects(store, admin):
    mine, other = german(store, "mine"), german(store, "other")
    ann = annotator(store, admin, "ann", mine)
    LabelingSession(store, mine, ann, retrain=False).next_item()
    with pytest.raises(AccessDenied, match="not assigned"):
        LabelingSession(store, other, ann, retrain=False)
    session = LabelingSession(store, mine, ann, retrain=False)
    store.remove_member(mine, ann.id)  # revoked mid-session: the next write is refused
    with pytest.raises(AccessDenied):
        session.submit(store.item_ids(mine, "pool")[0], 0)
    assert store.leases(mine) == []  # and the revoked annotator's leases ended
    assert [p["name"] for p in store.member_projects(ann.id)] == []
    LabelingSession(store, other, admin, retrain=False).next_item()  # admins reach every project


def test_accounts_overview_counts_labels_and_assignments_for_admins_only(store, admin):
    pid = german(store)
    ann = annotator(store, admin, "ann", pid)
    session = LabelingSession(store, pid, "ann")
    for _ in range(3):
        session.submit(session.next_item().item_id, 1)
    rows = {r["name"]: r for r in auth.accounts_overview(store, by=admin)}
    assert rows["ann"]["labels_given"] == 3 and rows["ann"]["project_ids"] == [pid]
    assert rows["root"]["labels_given"] == 0 and rows["root"]["has_password"]
    with pytest.raises(AccessDenied):
        auth.accounts_overview(store, by=ann)


def test_oidc_users_get_local_accounts(store, monkeypatch):
    monkeypatch.setenv("FAIRAL_OIDC_ADMINS", "Boss@example.org")
    assert auth.oidc_user(store, "worker@example.org").role == "annotator"
    boss = auth.oidc_user(store, "boss@example.org")
    assert boss.is_admin and auth.oidc_user(store, "boss@example.org") == boss


# ------------------------------------------------------------------ leases


def test_an_item_goes_to_one_annotator_at_a_time(store, admin):
    pid = german(store)
    a, b = (annotator(store, admin, n, pid) for n in ("ann", "bob"))
    first = store.lease_next_item(pid, a.id)
    assert store.lease_next_item(pid, a.id)["item_id"] == first["item_id"]  # a reload shows the same item
    second = store.lease_next_item(pid, b.id)
    assert second["item_id"] != first["item_id"]
    store.submit_label(pid, first["item_id"], a.id, 1, max_answers=1)
    assert store.leases(pid) == [{**store.leases(pid)[0]}] and store.leases(pid)[0]["annotator_id"] == b.id
    with pytest.raises(StoreError, match="overlap"):  # crafted submit of an item already answered
        store.submit_label(pid, first["item_id"], b.id, 0, max_answers=1)


def test_expired_leases_return_to_the_queue(store, admin):
    pid = german(store)
    a, b = (annotator(store, admin, n, pid) for n in ("ann", "bob"))
    first = store.lease_next_item(pid, a.id, ttl_seconds=0.05)
    time.sleep(0.1)
    assert store.lease_next_item(pid, b.id)["item_id"] == first["item_id"]


def test_overlap_k_hands_each_item_to_k_annotators_and_finishes_started_items_first(store, admin):
    pid = german(store, overlap=3)
    users = [annotator(store, admin, f"a{i}", pid) for i in range(4)]
    item = store.lease_next_item(pid, users[0].id, overlap=3)["item_id"]
    store.submit_label(pid, item, users[0].id, 1, max_answers=3)
    # the partly labeled item is offered first to the next two annotators, then no more
    assert store.lease_next_item(pid, users[1].id, overlap=3)["item_id"] == item
    assert store.lease_next_item(pid, users[2].id, overlap=3)["item_id"] == item
    assert store.lease_next_item(pid, users[3].id, overlap=3)["item_id"] != item


def test_budget_stops_new_items(store, admin):
    pid = german(store)
    a, b = (annotator(store, admin, n, pid) for n in ("ann", "bob"))
    first = store.lease_next_item(pid, a.id, budget=1)
    assert first is not None and store.lease_next_item(pid, b.id, budget=1) is None


def test_concurrent_annotators_never_share_an_item(tmp_path, admin):
    path = tmp_path / "fairal.db"
    with Store(path) as setup:
        pid = german(setup)
        root = auth.create_account(setup, "root", "correct horse battery", role="admin")
        users = [annotator(setup, root, f"w{i}", pid) for i in range(8)]
    handed, errors = [], []

    def work(user):
        try:
            with Store(path) as own:
                for _ in range(3):
                    row = own.lease_next_item(pid, user.id, overlap=1, budget=30)
                    if row is None:
                        return
                    handed.append(row["item_id"])
                    own.submit_label(pid, row["item_id"], user.id, 0, max_answers=1)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(handed) == 24 and len(set(handed)) == 24
    with Store(path) as check:
        assert check.label_count(pid) == 24


# --------------------------------------------------------- sessions on top


def test_skip_requeues_for_me_and_frees_the_item_for_others(store, admin):
    pid = german(store)
    a, b = (LabelingSession(store, pid, annotator(store, admin, n, pid), retrain=False) for n in ("ann", "bob"))
    item = a.next_item()
    a.skip(item.item_id)
    assert a.next_item().item_id != item.item_id
    assert b.next_item().item_id == item.item_id  # the skipped item is free again


def test_undo_gives_the_item_back_to_whoever_undid_it(store, admin):
    pid = german(store)
    session = LabelingSession(store, pid, annotator(store, admin, "ann", pid), retrain=False)
    item = session.next_item()
    session.submit(item.item_id, 1)
    assert session.next_item().item_id != item.item_id
    assert session.undo() == item.item_id
    assert session.next_item().item_id == item.item_id
    history = store.label_history(pid, item_id=item.item_id)
    assert [h["action"] for h in history] == ["submit", "undo"]


def test_quiz_items_are_mixed_in_and_never_train(store, admin):
    pid = german(store, gold_rate=0.5)
    session = LabelingSession(store, pid, annotator(store, admin, "ann", pid), retrain=False)
    gold = store.gold(pid)
    assert len(gold) == 20  # the seed examples
    quizzes, right = 0, 0
    for _ in range(30):
        item = session.next_item()
        if item is None:
            break
        answer = truth(session, item)
        result = session.submit(item.item_id, answer)
        if item.gold:
            quizzes += 1
            right += result["correct"]
            assert item.item_id in gold
    assert 5 <= quizzes <= 25 and right == quizzes
    assert store.label_count(pid) == 30 - quizzes  # quiz answers are not labels
    assert len(store.gold_answers(pid)) == quizzes


def test_confidence_scale_labels_train_as_binary(store, admin):
    pid = german(store, scale="confidence4", overlap=2)
    project = open_project(store, pid)
    assert store.project(pid)["label_values"] == [1, 2, 3, 4]
    a, b = (LabelingSession(store, pid, annotator(store, admin, n, pid), retrain=False) for n in ("ann", "bob"))
    assert a.label_names[0].startswith("surely") and len(a.label_names) == 4
    item = a.next_item()
    a.submit(item.item_id, 4)
    assert b.next_item().item_id == item.item_id  # finish the started item first
    b.submit(item.item_id, 2)  # mean 3.0 > 2.5: positive
    second = a.next_item()
    a.submit(second.item_id, 1)
    assert project.training_labels(store) == {item.item_id: 1, second.item_id: 0}
    with pytest.raises(ValueError, match="label value"):
        a.submit(a.next_item().item_id, 0)


def test_bad_annotation_settings_are_refused(store):
    for bad, message in [({"overlap": 0}, "overlap"), ({"scale": "stars"}, "scale"),
                         ({"gold_rate": 0.9}, "gold_rate"), ({"lease_seconds": 1}, "lease_seconds")]:
        with pytest.raises(ProjectError, match=message):
            german(store, **bad)
    assert store.projects() == []


def test_validation_set_replaces_the_seed_set_for_robust_trainers(store):
    pid = german(store)
    project = open_project(store, pid)
    X, y, _ = project.validation_arrays(store)
    assert len(y) == 20  # the seed set until a crowd set exists
    pool = store.item_ids(pid, "pool")[:12]
    store.set_validation_labels(pid, {i: k % 2 for k, i in enumerate(pool)}, method="majority_vote")
    X, y, _ = project.validation_arrays(store)
    assert len(y) == 12 and y.tolist() == [k % 2 for k in range(12)]
    with pytest.raises(NotFoundError):
        store.set_validation_labels(pid, {10**9: 1}, method="x")
    assert len(store.validation_labels(pid)) == 12  # a failed replacement keeps the old set


def test_training_claims_exclude_a_second_trainer(store):
    pid = german(store)
    assert store.claim_training(pid, "erm", "worker-1")
    assert not store.claim_training(pid, "erm", "worker-2")
    assert store.claim_training(pid, "forml", "worker-2")  # other trainers are independent
    assert store.claim_training(pid, "erm", "worker-2", stale_seconds=0)  # a dead holder is taken over
    store.release_training(pid, "erm", "worker-2")
    assert store.claim_training(pid, "erm", "worker-1")


def test_crowd_answers_import_all_or_nothing(store):
    pid = german(store)
    items = store.item_ids(pid, "pool")[:3]
    rows = [{"item_id": i, "worker_id": w, "answer": 1, "position": p} for i in items for p, w in enumerate("xy")]
    assert store.add_crowd_answers(pid, rows, source="a.csv") == 6
    with pytest.raises(NotFoundError, match="not in this project"):
        store.add_crowd_answers(pid, rows[:1] + [{"item_id": 10**9, "worker_id": "z", "answer": 1}], source="b.csv")
    assert len(store.crowd_answers(pid)) == 6
    with pytest.raises(StoreError, match="already imported"):
        store.add_crowd_answers(pid, rows[:2], source="c.csv")
    assert len(store.crowd_answers(pid)) == 6
    assert np.array_equal(sorted({r["item_id"] for r in store.crowd_answers(pid)}), sorted(items))


def test_admin_only_writes_through_the_library(store, admin):
    ann = annotator(store, admin, "ann")
    with pytest.raises(AccessDenied):
        create_project(store, ProjectSettings(name="x", dataset="german", budget=30, n_initial=20), by=ann)
    pid = create_project(store, ProjectSettings(name="x", dataset="german", budget=30, n_initial=20), by=admin)
    with pytest.raises(AccessDenied):
        auth.assign(store, pid, ann.id, by=ann)
    auth.assign(store, pid, ann.id, by=admin)
    assert store.is_member(pid, ann.id)
    with pytest.raises(AccessDenied):
        auth.set_role(store, ann.id, "admin", by=ann)
    with pytest.raises(AuthError, match="own admin role"):
        auth.set_role(store, admin.id, "annotator", by=admin)
    auth.unassign(store, pid, ann.id, by=admin)
    assert not store.is_member(pid, ann.id)


def test_a_quiz_item_answered_through_another_session_object_is_a_quiz_answer(store, admin):
    pid = german(store, gold_rate=0.5)
    user = annotator(store, admin, "ann", pid)
    first = LabelingSession(store, pid, user, retrain=False)
    for _ in range(20):
        item = first.next_item()
        if item.gold:
            break
        first.submit(item.item_id, 0)
    assert item.gold
    result = LabelingSession(store, pid, user, retrain=False).submit(item.item_id, 1)  # e.g. after a rerun
    assert set(result) == {"value", "gold", "correct"}
    assert store.gold_answers(pid)[-1]["item_id"] == item.item_id


def test_remembered_sign_ins_resume_expire_and_end(store, admin):
    token = auth.start_session(store, admin)
    assert auth.resume_session(store, token) == admin
    assert token not in str(store._rows("SELECT * FROM auth_sessions"))  # only the hash is stored
    assert auth.resume_session(store, "x" * 43) is None and auth.resume_session(store, None) is None
    auth.end_session(store, token)
    assert auth.resume_session(store, token) is None
    short = auth.start_session(store, admin, days=0.1 / 86_400)
    time.sleep(0.2)
    assert auth.resume_session(store, short) is None  # expired
    kept = auth.start_session(store, admin)
    auth.set_password(store, admin.id, "a brand new password", by=admin)
    assert auth.resume_session(store, kept) is None  # a password change signs every browser out
