import time

import numpy as np
import pytest

from fairal.datasets import load_german
from fairal.labeling import LabelingSession
from fairal.projects import (
    DEFAULT_PROJECT_NAME,
    CsvSource,
    ProjectError,
    ProjectSettings,
    create_project,
    ensure_default_project,
    open_project,
)
from fairal.store import Store


@pytest.fixture
def german_project(store):
    return create_project(store, ProjectSettings(name="german", dataset="german", budget=30, n_initial=20))


def oracle(session, item):
    """The true label of a queued item (what a careful annotator would answer)."""
    data = session.project.dataset
    return int(data.y[data.positions([item.item_id])[0]])


def test_default_project_is_ready_to_label(store):
    project_id = ensure_default_project(store)
    project = open_project(store, project_id)
    assert project.name == DEFAULT_PROJECT_NAME and project.row["dataset"] == "adult"
    assert len(project.pool) + len(project.test) == len(project.dataset) - len(project.dataset) // 2
    assert len(project.seed) == 50 and set(project.dataset.y[project.seed]) == {0, 1}
    assert project.strategy_name == "group_random" and project.trainer_names == ["pool_parity", "erm"]
    assert project.features.shape == (len(project.dataset), 32)  # the policy's representation
    assert {p["trainer"] for p in store.curve_points(project_id)} == {"pool_parity", "erm"}
    assert ensure_default_project(store) == project_id  # created once


def test_roles_are_disjoint(store, german_project):
    project = open_project(store, german_project)
    seed, pool, test = map(set, (project.seed, project.pool, project.test))
    assert not (seed & pool or seed & test or pool & test)


def test_labels_move_the_curve(store, german_project):
    session = LabelingSession(store, german_project, "ann")
    for _ in range(5):
        item = session.next_item()
        session.submit(item.item_id, oracle(session, item))
    frame = store.curve_frame(german_project)
    assert list(frame["budget"]) == [0, 1, 2, 3, 4, 5]
    assert frame[["f1", "demographic_parity_difference"]].drop_duplicates().shape[0] > 1
    assert session.progress().labeled == 5


def test_next_item_follows_the_strategy_ranking(store, german_project):
    session = LabelingSession(store, german_project, "ann")
    item = session.next_item()
    scores = store.ranking(german_project)["scores"]  # every pool item's, not only the ranked head's
    assert item.rank == 0 and item.score == pytest.approx(scores.max())
    assert list(item.display.index) == list(session.project.dataset.display.columns)


def test_ranking_is_refreshed_after_a_label(store, german_project):
    session = LabelingSession(store, german_project, "ann")
    before = {r["item_id"]: r["score"] for r in store.items(german_project, role="pool")}
    item = session.next_item()
    session.submit(item.item_id, oracle(session, item))
    after = {r["item_id"]: r["score"] for r in store.items(german_project, role="pool")}
    assert any(after[i] != before[i] for i in after if i != item.item_id)


def test_skip_moves_the_item_back(store, german_project):
    session = LabelingSession(store, german_project, "ann")
    first = session.next_item()
    session.skip(first.item_id)
    assert session.next_item().item_id != first.item_id


def test_undo_returns_the_item_and_keeps_history(store, german_project):
    session = LabelingSession(store, german_project, "ann")
    item = session.next_item()
    session.submit(item.item_id, 1)
    assert session.undo() == item.item_id
    assert session.progress().labeled == 0
    assert session.next_item().item_id == item.item_id
    assert [h["action"] for h in store.label_history(german_project)] == ["submit", "undo"]


def test_budget_reached_stops_the_queue(store):
    project_id = create_project(store, ProjectSettings(name="tiny", dataset="german", budget=2, n_initial=20))
    session = LabelingSession(store, project_id, "ann", retrain=False)
    for _ in range(2):
        session.submit(session.next_item().item_id, 0)
    assert session.next_item() is None
    pool_item = store.item_ids(project_id, "pool")[-1]
    with pytest.raises(ValueError, match="budget of 2 labels is used up"):
        session.submit(pool_item, 1)


def test_an_answer_is_checked_in_the_transaction_that_commits_it(store, german_project):
    """Access and archiving are read under the write lock with the commit: a project archived or an
    annotator unassigned after the page was drawn refuses the answer, and nothing is stored."""
    from fairal.auth import AccessDenied

    session = LabelingSession(store, german_project, "ann", retrain=False)
    item = session.next_item()
    store.set_archived(german_project, True)
    with pytest.raises(AccessDenied, match="archived"):
        session.submit(item.item_id, 1)
    store.set_archived(german_project, False)
    store.remove_member(german_project, session.annotator_id)
    with pytest.raises(AccessDenied, match="not assigned"):
        session.submit(item.item_id, 1)
    assert store.label_count(german_project) == 0
    store.add_member(german_project, session.annotator_id)
    session.submit(item.item_id, 1)
    assert store.label_count(german_project) == 1


def test_two_annotators_racing_for_the_last_label_of_the_budget_store_one(tmp_path):
    """The budget is checked in the commit's transaction: two processes' connections answering
    different items at once, with one label of budget left, store exactly one label."""
    import threading

    path = tmp_path / "race.db"
    with Store(path) as store:
        pid = create_project(store, ProjectSettings(name="tiny", dataset="german", budget=1, n_initial=20))
        ids = [store.get_or_create_annotator(name) for name in ("a", "b")]
        for annotator_id in ids:
            store.add_member(pid, annotator_id)
        items = store.item_ids(pid, "pool")[:2]
    barrier, outcomes = threading.Barrier(2), []

    def answer(annotator_id, item_id):
        with Store(path) as own:
            barrier.wait()
            try:
                own.submit_answer(pid, item_id, annotator_id, 1, overlap=1, budget=1)
                outcomes.append("stored")
            except ValueError as error:
                outcomes.append(str(error))

    threads = [threading.Thread(target=answer, args=pair) for pair in zip(ids, items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["stored", "the budget of 1 labels is used up"]
    with Store(path) as store:
        assert store.label_count(pid, role="pool") == 1


def test_label_is_kept_when_retraining_fails(store, german_project, monkeypatch):
    session = LabelingSession(store, german_project, "ann")
    item = session.next_item()
    monkeypatch.setattr(session.project, "retrain", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert session.submit(item.item_id, 1) == []
    assert store.labeled_items(german_project) == {item.item_id: 1}


def test_adult_retrain_is_fast(store):
    project_id = ensure_default_project(store)
    session = LabelingSession(store, project_id, "ann")
    session.project.retrain(store)  # warm-up
    item = session.next_item()
    start = time.perf_counter()
    session.submit(item.item_id, oracle(session, item))
    # The issue asks for < 1 s; measured figures are in benchmarks/. A loose bound keeps CI stable.
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(budget=10_000), r"budget \(10000\) is larger than the unlabeled pool \(250 items\)"),
        (dict(strategy="oracle"), "strategy must be one of"),
        (dict(trainers=("svm",)), "trainers must be a non-empty subset"),
        (dict(metric="beauty"), "metric must be one of"),
        (dict(n_initial=1), "n_initial must be at least 2"),
    ],
)
def test_bad_settings_are_rejected_and_nothing_is_stored(store, settings, message):
    with pytest.raises(ProjectError, match=message):
        create_project(store, ProjectSettings(name="bad", dataset="german", **settings))
    assert store.projects() == []


def test_duplicate_project_name(store, german_project):
    with pytest.raises(ProjectError, match="already exists"):
        create_project(store, ProjectSettings(name="german", dataset="german"))


def _german_csv() -> bytes:
    german = load_german()
    frame = german.display.copy()
    frame["credit"] = np.array(german.classes)[german.y]
    return frame.to_csv().encode()


def test_csv_project_round_trip(store):
    source = CsvSource(data=_german_csv(), label="credit", sensitive="sex", positive="good credit",
                       id_column="id", filename="german.csv")
    project_id = create_project(store, ProjectSettings(name="csv", budget=20, n_initial=20), csv=source)
    project = open_project(store, project_id)
    assert project.row["dataset"] == "csv:german.csv" and len(project.dataset) == 1000
    assert project.dataset.classes[1] == "good credit"
    session = LabelingSession(store, project_id, "ann")
    item = session.next_item()
    session.submit(item.item_id, 1)
    assert store.label_count(project_id) == 1


def test_a_stored_csv_project_opens_after_the_operator_lowers_the_upload_limits(store, monkeypatch):
    """The size and row limits guard new uploads; a project accepted before keeps opening (its CSV is
    parsed again from the store when no kept arrays exist, as for an in-memory store)."""
    import fairal.projects as projects
    from fairal.datasets import DatasetError

    source = CsvSource(data=_german_csv(), label="credit", sensitive="sex", positive="good credit",
                       id_column="id", filename="german.csv")
    project_id = create_project(store, ProjectSettings(name="csv", budget=20, n_initial=20), csv=source)
    monkeypatch.setenv("FAIRAL_MAX_CSV_ROWS", "100")
    projects._csv_dataset.cache_clear()
    with pytest.raises(DatasetError, match="100"):  # a new upload of the same file is refused
        projects.csv_dataset(source)
    projects._csv_dataset.cache_clear()
    assert len(open_project(store, project_id).dataset) == 1000


def test_single_group_csv_is_rejected_and_nothing_is_stored(store):
    frame_bytes = b"x,label,grp\n1,0,a\n2,1,a\n3,0,a\n4,1,a\n"
    with pytest.raises(ValueError, match="group"):
        create_project(store, ProjectSettings(name="one group", budget=1, n_initial=2),
                       csv=CsvSource(data=frame_bytes, label="label", sensitive="grp"))
    assert store.projects() == []


def test_failed_first_model_leaves_no_project(store, monkeypatch):
    from fairal.trainers import ERMTrainer

    def broken_fit(self, *args, **kwargs):
        raise RuntimeError("no model today")

    monkeypatch.setattr(ERMTrainer, "fit", broken_fit)
    source = CsvSource(data=_german_csv(), label="credit", sensitive="sex", filename="german.csv")
    with pytest.raises(RuntimeError, match="no model today"):
        create_project(store, ProjectSettings(name="broken", budget=5, n_initial=20), csv=source)
    assert store.projects() == []


def test_random_strategy_ranks_the_pool_once(store):
    project_id = create_project(store, ProjectSettings(name="random", dataset="german", strategy="random",
                                                       budget=10, n_initial=20))
    pool = store.item_ids(project_id, "pool")
    ranking = store.ranking(project_id)
    ordered = ranking["item_ids"].tolist()
    assert sorted(ordered) == sorted(pool) and ranking["version"] == 1  # every pool item, once
    assert ordered != sorted(ordered)  # a shuffled order, not item-id order
    session = LabelingSession(store, project_id, "ann")
    first = session.next_item()
    assert first.item_id == ordered[0]
    session.submit(first.item_id, 1)
    assert session.next_item().item_id == ordered[1]  # not re-ranked after a label


def _statements(store, action):
    """``action()``'s result and the SQL statements it sent to the store's connection."""
    sent: list[str] = []
    store._db.conn.set_trace_callback(sent.append)
    try:
        result = action()
    finally:
        store._db.conn.set_trace_callback(None)
    return result, sent


def test_with_a_worker_a_key_press_commits_the_answer_and_the_next_lease_once(tmp_path):
    """With the background worker and no quiz, submit commits the answer and the next item's lease in
    one transaction; next_item then only reads. The items handed out are the ones the two-commit
    way hands out, and a second annotator never gets the leased item (overlap 1)."""
    with Store(tmp_path / "f.db") as store:
        pids = [create_project(store, ProjectSettings(name=name, dataset="german", budget=30, n_initial=20))
                for name in ("one commit", "two commits")]
        one, two = (LabelingSession(store, pid, "ann", retrain=False) for pid in pids)
        two.lease_with_answer = False
        other = LabelingSession(store, pids[0], "other", retrain=False)
        assert one.lease_with_answer and not LabelingSession(store, pids[0], "ann").lease_with_answer
        handed: dict[str, list[int]] = {"one": [], "two": []}
        for name, session in (("one", one), ("two", two)):
            item = session.next_item()
            for _ in range(4):
                handed[name].append(item.item_id)
                _, sent = _statements(store, lambda s=session, i=item: s.submit(i.item_id, oracle(s, i)))
                assert sent.count("COMMIT") == 1  # both ways: the answer's commit
                leased = [r["item_id"] for r in store.leases(session.project.id)
                          if r["annotator_id"] == session.annotator_id]
                item, sent = _statements(store, session.next_item)
                if name == "one":  # the lease came with the answer; next_item wrote nothing
                    assert leased == [item.item_id] and "COMMIT" not in sent and "BEGIN IMMEDIATE" not in sent
                else:
                    assert leased == [] and sent.count("COMMIT") == 1
        assert handed["one"] == handed["two"]
        assert sorted(store.labeled_items(pids[0])) == sorted(handed["one"])
        assert other.next_item().item_id not in [*handed["one"], item.item_id]


def test_an_answer_is_kept_when_leasing_the_next_item_with_it_fails(store, german_project, monkeypatch, caplog):
    session = LabelingSession(store, german_project, "ann", retrain=False)
    item = session.next_item()
    lease_next_item = store.lease_next_item

    def half_done(project_id, annotator_id, **kwargs):
        with store.transaction():  # a savepoint in the answer's transaction
            leased = lease_next_item(project_id, annotator_id, **kwargs)
            assert store.leases(project_id)[0]["item_id"] == leased["item_id"]
            raise RuntimeError("disk hiccup")

    monkeypatch.setattr(store, "lease_next_item", half_done)
    assert session.submit(item.item_id, 1) == []
    assert store.labeled_items(german_project) == {item.item_id: 1}
    assert store.leases(german_project) == [] and "leasing the next item" in caplog.text
    monkeypatch.setattr(store, "lease_next_item", lease_next_item)
    following = session.next_item()
    assert following is not None and following.item_id != item.item_id
    assert [r["item_id"] for r in store.leases(german_project)] == [following.item_id]


def test_an_expired_lease_is_not_read_as_live(store, german_project):
    annotator = store.get_or_create_annotator("ann")
    leased = store.lease_next_item(german_project, annotator, ttl_seconds=600)
    assert store.live_lease(german_project, annotator)["item_id"] == leased["item_id"]
    store.lease_item(german_project, leased["item_id"], annotator, ttl_seconds=-1)
    assert store.live_lease(german_project, annotator) is None


def test_a_key_press_walks_no_roles_items(tmp_path):
    """Every query of a key press (answer, lease, next item) looks items up by id or walks the ranked
    head: none walks all the project's items of a role (30 ms at 250,000 pool items: the budget count
    did, once items were also indexed by (project, role, item))."""
    with Store(tmp_path / "f.db") as store:
        pid = create_project(store, ProjectSettings(name="g", dataset="german", budget=30, n_initial=20))
        session = LabelingSession(store, pid, "ann", retrain=False)
        item = session.next_item()
        _, sent = _statements(store, lambda: (session.submit(item.item_id, oracle(session, item)),
                                               session.next_item()))
        plans = {sql: [row[3] for row in store._db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
                 for sql in sent if sql.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "DELETE"))}
        assert len(plans) >= 5
        walks = {" ".join(sql.split())[:80]: step for sql, steps in plans.items() for step in steps
                 if step.startswith("SCAN i") or step.endswith("items_role_item (project_id=? AND role=?)")}
        assert walks == {}
