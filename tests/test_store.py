import multiprocessing
import sys
import threading
import time

import pytest
from sqlite_utils import Database

from fairal.store import (
    METRIC_COLUMNS,
    DuplicateError,
    NotFoundError,
    Store,
    schema,
)

PROJECT = dict(
    dataset="adult",
    label_column="income",
    sensitive="sex",
    split_seed=0,
    strategy="margin",
    trainers=["erm"],
    budget=100,
    metric="demographic_parity_difference",
    threshold=0.1,
)


def make_project(store, *, name="p", n_pool=5, items=None):
    """Pool items 0..n_pool-1 ranked in reverse (item n_pool-1 first), plus
    one seed (10000), one test (10001) and one validation (10002) item."""
    if items is None:
        items = [{"item_id": i, "role": "pool", "rank": n_pool - 1 - i} for i in range(n_pool)]
        items += [
            {"item_id": 10_000, "role": "seed"},
            {"item_id": 10_001, "role": "test"},
            {"item_id": 10_002, "role": "validation"},
        ]
    return store.create_project(name=name, items=items, **PROJECT)


def row_counts(path):
    db = Database(path)
    try:
        return {table: db[table].count for table in db.table_names() if table != "sqlite_sequence"}
    finally:
        db.close()


def submit_many(path, project_id, annotator, item_ids, barrier=None):
    """Open a Store of one's own and label each item with 1 (thread or process target)."""
    with Store(path) as store:
        annotator_id = store.get_or_create_annotator(annotator)
        if barrier is not None:
            barrier.wait(timeout=30)
        for item_id in item_ids:
            store.submit_label(project_id, item_id, annotator_id, 1)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "new" / "fairal.db"


@pytest.fixture
def project(store):
    return make_project(store)


@pytest.fixture
def ann(store):
    return store.add_annotator("ann")


# ------------------------------------------------------------------ labels


def test_label_survives_reopening_the_file(db_path):
    with Store(db_path) as store:
        project_id = make_project(store)
        store.submit_label(project_id, 3, store.add_annotator("ann"), 1)
    with Store(db_path) as store:
        assert store.labeled_items(project_id) == {3: 1}


def test_edit_keeps_earlier_value_in_history(store, project, ann):
    store.submit_label(project, 3, ann, 0)
    assert store.submit_label(project, 3, ann, 1)["value"] == 1
    history = store.label_history(project, item_id=3)
    assert [(h["action"], h["old_value"], h["new_value"]) for h in history] == [
        ("submit", None, 0),
        ("edit", 0, 1),
    ]


def test_undo_of_first_submit_removes_label_and_requeues_item(store, project, ann):
    store.submit_label(project, 4, ann, 1)
    assert store.undo_last_label(project, ann) == {"item_id": 4, "value": None}
    assert store.labels(project) == []
    assert store.next_items(project, ann)[0]["item_id"] == 4


def test_undo_of_edit_restores_old_value(store, project, ann):
    store.submit_label(project, 4, ann, 0)
    store.submit_label(project, 4, ann, 1)
    assert store.undo_last_label(project, ann) == {"item_id": 4, "value": 0}
    assert store.labeled_items(project) == {4: 0}


def test_undo_with_nothing_to_undo_returns_none(store, project, ann):
    assert store.undo_last_label(project, ann) is None


def test_repeated_undo_walks_back_then_returns_none(store, project, ann):
    store.submit_label(project, 4, ann, 0)
    store.submit_label(project, 3, ann, 1)
    store.submit_label(project, 4, ann, 1)
    undone = [store.undo_last_label(project, ann) for _ in range(4)]
    assert undone == [
        {"item_id": 4, "value": 0},
        {"item_id": 3, "value": None},
        {"item_id": 4, "value": None},
        None,
    ]


def test_undo_leaves_other_annotators_labels_alone(store, project, ann):
    other = store.add_annotator("other")
    store.submit_label(project, 4, ann, 1)
    store.submit_label(project, 3, other, 0)
    store.undo_last_label(project, ann)
    assert store.labeled_items(project) == {3: 0}


def test_resubmitting_the_same_value_writes_no_history(store, project, ann):
    store.submit_label(project, 4, ann, 1)
    store.submit_label(project, 4, ann, 1)
    assert len(store.label_history(project)) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2, "label value must be one of [0, 1], got 2"),
        ("1", "label value must be one of [0, 1], got '1'"),
        (True, "label value must be one of [0, 1], got True"),
    ],
)
def test_invalid_label_value_changes_nothing(store, project, ann, value, message):
    store.submit_label(project, 4, ann, 0)
    with pytest.raises(ValueError) as excinfo:
        store.submit_label(project, 4, ann, value)
    assert str(excinfo.value) == message
    assert store.labeled_items(project) == {4: 0}
    assert len(store.label_history(project)) == 1


def test_label_on_a_test_item_is_refused(store, project, ann):
    with pytest.raises(ValueError, match="item 10001 has role 'test'"):
        store.submit_label(project, 10_001, ann, 1)


def test_label_on_an_unknown_item_raises_not_found(store, project, ann):
    with pytest.raises(NotFoundError, match="item 999 is not in project 1"):
        store.submit_label(project, 999, ann, 1)


def test_label_count_by_annotator_and_role(store, project, ann):
    other = store.add_annotator("other")
    store.submit_label(project, 4, ann, 1)
    store.submit_label(project, 4, other, 1)
    store.submit_label(project, 10_002, ann, 0)
    assert store.label_count(project) == 2
    assert store.label_count(project, annotator_id=other) == 1
    assert store.label_count(project, role="pool") == 1


def test_labeled_items_majority_vote_ties_go_to_most_recent(store, project):
    a, b, c = (store.add_annotator(name) for name in "abc")
    store.submit_label(project, 4, a, 1)
    store.submit_label(project, 4, b, 0)
    store.submit_label(project, 3, a, 0)
    store.submit_label(project, 3, b, 1)
    store.submit_label(project, 3, c, 0)
    assert store.labeled_items(project) == {3: 0, 4: 0}


# ------------------------------------------------------------- next items


def test_next_items_follow_rank_with_unranked_last(store, ann):
    items = [{"item_id": i, "role": "pool"} for i in range(4)]
    project = make_project(store, items=items)
    store.set_ranking(project, [3, 1], [0.9, 0.5])
    assert [i["item_id"] for i in store.next_items(project, ann, limit=4)] == [3, 1, 0, 2]


def test_next_items_exclude_items_labeled_by_anyone(store, project, ann):
    store.submit_label(project, 4, store.add_annotator("other"), 1)
    assert [i["item_id"] for i in store.next_items(project, ann, limit=2)] == [3, 2]


def test_next_items_put_skipped_items_last_oldest_skip_first(store, project, ann):
    store.record_skip(project, 3, ann)
    store.record_skip(project, 4, ann)
    assert [i["item_id"] for i in store.next_items(project, ann, limit=5)] == [2, 1, 0, 3, 4]


def test_skips_of_another_annotator_do_not_reorder(store, project, ann):
    store.record_skip(project, 4, store.add_annotator("other"))
    assert store.next_items(project, ann)[0]["item_id"] == 4


def test_set_ranking_with_unknown_item_changes_nothing(store, project):
    with pytest.raises(NotFoundError, match=r"items \[999\] are not pool items of project 1"):
        store.set_ranking(project, [0, 999], [1.0, 0.5])
    assert store.items(project, role="pool")[0]["rank"] == 4


# ------------------------------------------------------- projects, errors


def test_project_comes_back_with_json_fields_decoded(store, project):
    got = store.project(project)
    assert (got["trainers"], got["label_values"], got["config"]) == (["erm"], [0, 1], {})


def test_existing_project_name_raises_duplicate(store, project):
    with pytest.raises(DuplicateError, match="a project named 'p' already exists"):
        make_project(store)


def test_existing_annotator_name_raises_duplicate(store, ann):
    with pytest.raises(DuplicateError, match="an annotator named 'ann' already exists"):
        store.add_annotator("ann")


def test_get_or_create_annotator_returns_the_existing_id(store, ann):
    assert store.get_or_create_annotator("ann") == ann


def test_unknown_project_raises_not_found(store):
    with pytest.raises(NotFoundError, match="project 7 does not exist"):
        store.project(7)


@pytest.mark.parametrize(
    ("bad_item", "message"),
    [
        ({"item_id": 0, "role": "pool"}, "item_id 0 appears twice in items"),
        (
            {"item_id": 9999, "role": "train"},
            "role must be one of ['seed', 'pool', 'test', 'validation'], got 'train'",
        ),
    ],
)
def test_create_project_with_invalid_item_leaves_nothing(db_path, bad_item, message):
    items = [{"item_id": i, "role": "pool"} for i in range(1000)] + [bad_item]
    with Store(db_path) as store:
        with pytest.raises(ValueError) as excinfo:
            make_project(store, items=items)
        assert store.projects() == []
    assert str(excinfo.value) == message
    assert row_counts(db_path)["items"] == 0


def test_delete_project_removes_everything(db_path):
    with Store(db_path) as store:
        project = make_project(store)
        store.submit_label(project, 4, store.add_annotator("ann"), 1)
        store.record_skip(project, 3, 1)
        store.record_evaluation(
            project, trainer="erm", strategy="margin", budget=1, metrics={}, n_labels=1
        )
        store.delete_project(project)
    counts = row_counts(db_path)
    assert counts == {**dict.fromkeys(counts, 0), "annotators": 1}


def test_dataset_file_comes_back_byte_for_byte(store):
    file_id = store.add_dataset_file("people.csv", b"age,y\n30,1\n")
    assert store.dataset_file(file_id) == b"age,y\n30,1\n"


def test_store_of_schema_version_1_gains_dataset_files(db_path, monkeypatch):
    with monkeypatch.context() as version_1:  # a file as the first release wrote it
        version_1.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        version_1.setattr(schema, "SCHEMA_VERSION", 1)
        Store(db_path).close()
    with Database(db_path) as db:
        assert "dataset_files" not in db.table_names()
    with Store(db_path) as store:
        assert store.dataset_file(store.add_dataset_file("a.csv", b"x")) == b"x"


# ------------------------------------------------------- models and curves


def test_record_evaluation_numbers_versions_per_trainer(store, project):
    def record(trainer):
        return store.record_evaluation(
            project, trainer=trainer, strategy="margin", budget=5, metrics={}, n_labels=5
        )["version"]

    assert [record("erm"), record("erm"), record("forml")] == [1, 2, 1]


def test_record_evaluation_stores_state_and_metrics(store, project):
    ids = store.record_evaluation(
        project, trainer="erm", strategy="margin", budget=5, metrics={"f1": 0.5},
        n_labels=5, state=b"\x00weights", info={"epochs": 3},
    )
    assert store.model_state(ids["model_version_id"]) == b"\x00weights"
    assert store.latest_model_version(project, "erm")["info"] == {"epochs": 3}
    point = store.curve_points(project)[0]
    assert (point["f1"], point["accuracy"], point["model_version_id"]) == (
        0.5, None, ids["model_version_id"],
    )


def test_record_evaluation_with_unknown_metric_writes_nothing(store, project):
    with pytest.raises(ValueError, match=r"unknown metrics \['auc'\]"):
        store.record_evaluation(
            project, trainer="erm", strategy="margin", budget=5,
            metrics={"f1": 0.5, "auc": 0.9}, n_labels=5, state=b"w",
        )
    assert store.model_versions(project) == []
    assert store.curve_points(project) == []


def test_curve_frame_empty_has_metric_columns(store, project):
    frame = store.curve_frame(project)
    assert frame.empty
    assert set(METRIC_COLUMNS) <= set(frame.columns)


# ------------------------------------------------------ files, concurrency


def test_file_store_uses_wal(db_path):
    Store(db_path).close()
    assert Database(db_path).journal_mode == "wal"


def test_opening_a_new_file_from_many_threads_at_once(db_path):
    threads = [
        threading.Thread(target=lambda: Store(db_path).close()) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Store(db_path) as store:
        assert store.projects() == []


def test_store_can_be_handed_to_another_thread(store, project, ann):
    thread = threading.Thread(target=store.submit_label, args=(project, 4, ann, 1))
    thread.start()
    thread.join()
    assert store.labeled_items(project) == {4: 1}


def test_one_store_shared_by_threads_loses_nothing(db_path):
    with Store(db_path) as store:
        project = make_project(store, n_pool=400)
        annotators = [store.add_annotator(f"s{k}") for k in range(4)]

        def work(k):
            for item_id in range(k * 100, (k + 1) * 100):
                store.submit_label(project, item_id, annotators[k], 1)
                store.label_count(project)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.label_count(project) == 400
        assert len(store.label_history(project)) == 400


def test_concurrent_threads_lose_no_labels(db_path):
    with Store(db_path) as store:
        project = make_project(store, n_pool=1600)
    barrier = threading.Barrier(8)
    threads = [
        threading.Thread(
            target=submit_many,
            args=(db_path, project, f"t{k}", range(k * 200, (k + 1) * 200), barrier),
        )
        for k in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Store(db_path) as store:
        assert store.label_count(project) == 1600


def test_concurrent_processes_lose_no_labels(db_path, monkeypatch):
    # Streamlit's AppTest (earlier tests) leaves __main__ pointing at the app script, which spawned
    # children would run first; they only need this module.
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    with Store(db_path) as store:
        project = make_project(store, n_pool=800)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    processes = [
        ctx.Process(
            target=submit_many,
            args=(db_path, project, f"p{k}", range(k * 200, (k + 1) * 200), barrier),
        )
        for k in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with Store(db_path) as store:
        assert store.label_count(project) == 800
        assert len(store.label_history(project)) == 800


def test_create_project_with_45000_items_is_quick(db_path):
    items = [{"item_id": i, "role": "pool", "rank": i, "score": 0.5} for i in range(45_000)]
    with Store(db_path) as store:
        start = time.perf_counter()
        project = make_project(store, items=items)
        elapsed = time.perf_counter() - start
        assert len(store.item_ids(project, "pool")) == 45_000
    print(f"create_project with 45,000 items: {elapsed:.3f} s")
    assert elapsed < 10


def test_dataset_file_is_kept_with_its_project(store):
    project_id = store.create_project(name="with file", dataset_file=("d.csv", b"a,b\n1,2\n"), **PROJECT)
    file_id = store.project(project_id)["config"]["dataset_file_id"]
    assert store.dataset_file(file_id) == b"a,b\n1,2\n"
    store.delete_project(project_id)
    with pytest.raises(NotFoundError):
        store.dataset_file(file_id)


def test_failed_create_keeps_no_dataset_file(store):
    duplicate = [{"item_id": 1, "role": "pool"}, {"item_id": 1, "role": "pool"}]
    with pytest.raises(ValueError):
        store.create_project(name="bad", dataset_file=("d.csv", b"x"), items=duplicate, **PROJECT)
    assert store.projects() == []
    with pytest.raises(NotFoundError):
        store.dataset_file(1)
