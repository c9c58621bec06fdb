"""A database written by the release before the store package (schema version 5, one column per
metric) opens with today's store, upgraded with nothing lost; newer files are refused.

The fixture, tests/data/store-v5.db, was written by tests/data/make_store_fixture.py at commit 52c9cfc.
"""

import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from fairal import auth
from fairal.metrics import METRICS
from fairal.store import SCHEMA_VERSION, Store, StoreError, schema

FIXTURE = Path(__file__).parent / "data" / "store-v5.db"
#: The passwords make_store_fixture.py gave its accounts.
PASSWORDS = {"root": "correct horse battery", "ann": "annotator password 1"}
POINT_COLUMNS = ["id", "project_id", "budget", "trainer", "strategy", "model_version_id", "created_at"]


def read(path, sql, params=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def tables(path):
    return [t for (t,) in read(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if t != "sqlite_sequence"]


def shape(path):
    """Every table's columns in order (name, type, not null, default, primary key), indexes, foreign keys."""
    with sqlite3.connect(path) as conn:
        return {t: (conn.execute(f"PRAGMA table_info({t})").fetchall(),
                    sorted(conn.execute(f"PRAGMA index_list({t})").fetchall()),
                    sorted(conn.execute(f"PRAGMA foreign_key_list({t})").fetchall()))
                for t in tables(path)}


@pytest.fixture(scope="module")
def old():
    """What the version-5 file holds, read with plain sqlite3 before any upgrade."""
    assert read(FIXTURE, "PRAGMA user_version") == [(5,)]
    columns = [c[1] for c in read(FIXTURE, "PRAGMA table_info(curve_points)")]
    metrics = [c for c in columns if c not in POINT_COLUMNS]
    assert set(metrics) == set(METRICS)  # the wide layout: one REAL column per metric
    points = read(FIXTURE, f"SELECT {', '.join(POINT_COLUMNS + metrics)} FROM curve_points ORDER BY id")
    return {
        "counts": {t: read(FIXTURE, f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables(FIXTURE)},
        "labels": read(FIXTURE, "SELECT project_id, item_id, annotator_id, value, seq FROM labels ORDER BY seq"),
        "points": [(dict(zip(POINT_COLUMNS, p[:7])), dict(zip(metrics, p[7:]))) for p in points],
        "models": read(FIXTURE, "SELECT * FROM model_versions ORDER BY id"),
        "projects": read(FIXTURE, "SELECT * FROM projects ORDER BY id"),
    }


@pytest.fixture
def upgraded(tmp_path):
    path = tmp_path / "fairal.db"
    shutil.copy(FIXTURE, path)
    with Store(path) as store:
        yield path, store


def test_the_fixture_has_a_row_in_every_table(old):
    assert all(old["counts"].values()), old["counts"]
    assert any(v is None for _, metrics in old["points"] for v in metrics.values())  # NULLs too


def test_an_old_file_is_upgraded_to_the_current_version_with_every_row(old, upgraded):
    path, store = upgraded
    assert store._schema_version() == SCHEMA_VERSION == read(path, "PRAGMA user_version")[0][0]
    counts = {t: read(path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables(path)}
    assert counts.pop("curve_metrics") == sum(v is not None for _, m in old["points"] for v in m.values())
    added = {t: counts.pop(t) for t in set(counts) - set(old["counts"])}  # tables of later versions
    assert {"rankings", "ranking_orders"} <= set(added) and set(added.values()) == {0}
    assert counts == old["counts"]
    assert read(path, "SELECT * FROM projects ORDER BY id") == old["projects"]
    assert read(path, "SELECT * FROM model_versions ORDER BY id") == old["models"]
    assert [p["name"] for p in store.projects()] == ["compas"]  # the archived one stays archived
    assert [p["name"] for p in store.projects(include_archived=True)] == ["compas", "old"]


def test_labels_and_accounts_survive(old, upgraded):
    _, store = upgraded
    labels = [(r["project_id"], r["item_id"], r["annotator_id"], r["value"], r["seq"])
              for p in store.projects(include_archived=True) for r in store.labels(p["id"])]
    assert labels == old["labels"]
    for name, password in PASSWORDS.items():
        who = auth.authenticate(store, name, password)
        assert who is not None and who.name == name
    assert auth.authenticate(store, "ann", "a wrong password") is None
    assert auth.user(store, store.annotator_by_name("root")["id"]).is_admin
    assert store.validation_info(1)["size"] > 0 and store.crowd_answers(1) and store.gold_answers(1)


def test_every_curve_point_keeps_every_metric_value(old, upgraded):
    _, store = upgraded
    points = [p for project in store.projects(include_archived=True) for p in store.curve_points(project["id"])]
    assert len(points) == len(old["points"])
    for point, (columns, metrics) in zip(points, old["points"]):
        assert {c: point[c] for c in POINT_COLUMNS} == columns
        assert {m: point[m] for m in metrics} == metrics  # NULL stays None, every value exactly equal
    frame = store.curve_frame(1)
    assert list(frame.columns) == POINT_COLUMNS + list(METRICS)
    assert store.last_curve_point_id(1) == max(c["id"] for c, _ in old["points"] if c["project_id"] == 1)


def test_models_still_load_and_new_evaluations_are_recorded(upgraded):
    path, store = upgraded
    latest = store.latest_model_version(1, "erm")
    assert latest["has_state"] and store.model_state(latest["id"])
    ids = store.record_evaluation(1, trainer="erm", strategy="entropy", budget=9, n_labels=9,
                                  metrics={"f1": 0.25, "accuracy": float("nan")})
    point = store.curve_points(1)[-1]
    assert (point["id"], point["f1"], point["accuracy"]) == (ids["curve_point_id"], 0.25, None)
    assert ids["version"] == latest["version"] + 1


def test_an_upgraded_file_has_the_schema_of_a_new_one(upgraded, tmp_path):
    path, _ = upgraded
    Store(tmp_path / "new.db").close()
    assert shape(path) == shape(tmp_path / "new.db")
    assert "accuracy" not in [c[1] for c in read(path, "PRAGMA table_info(curve_points)")]


def test_opening_a_current_file_again_runs_no_migration(upgraded, monkeypatch):
    path, store = upgraded
    store.close()
    before = shape(path)

    def refuse(db):
        raise AssertionError("a migration ran on a current file")

    monkeypatch.setattr(schema, "MIGRATIONS", (refuse,) * SCHEMA_VERSION)
    with Store(path) as again:
        assert again._schema_version() == SCHEMA_VERSION
    assert shape(path) == before


def test_a_file_from_a_newer_release_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "future.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=rf"future\.db has store schema version {SCHEMA_VERSION + 1}, "
                                         rf"but this fairal knows versions up to {SCHEMA_VERSION}"):
        Store(path)
    assert read(path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert read(path, "PRAGMA journal_mode") == [("delete",)]  # not even switched to WAL
    assert "accuracy" in [c[1] for c in read(path, "PRAGMA table_info(curve_points)")]


def test_a_failing_migration_leaves_the_file_at_its_version(tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    shutil.copy(FIXTURE, path)

    def broken(db):
        db.execute("DELETE FROM curve_points")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:5], broken))
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(path)
    assert read(path, "PRAGMA user_version") == [(5,)]
    assert read(path, "SELECT COUNT(*) FROM curve_points")[0][0] == 10


def test_many_threads_opening_an_old_file_at_once_migrate_it_once(old, tmp_path):
    path = tmp_path / "fairal.db"
    shutil.copy(FIXTURE, path)
    errors = []
    barrier = threading.Barrier(6)

    def open_it():
        try:
            barrier.wait()
            Store(path).close()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store(path) as store:
        assert len(store.curve_points(1)) + len(store.curve_points(2)) == len(old["points"])


def test_a_new_metric_needs_no_schema_change(upgraded, monkeypatch):
    path, store = upgraded
    before = shape(path)
    monkeypatch.setitem(METRICS, "brier_score", lambda *args, **kwargs: 0.0)
    store.record_evaluation(1, trainer="erm", strategy="entropy", budget=9, n_labels=9,
                            metrics={"f1": 0.5, "brier_score": 0.125})
    frame = store.curve_frame(1)
    assert frame["brier_score"].iloc[-1] == 0.125 and frame["brier_score"].iloc[:-1].isna().all()
    assert shape(path) == before


def _store_at_version(path, version: int) -> Store:
    """A store whose file has the schema of ``version`` (the migrations up to it, as that release ran them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:version])
        patch.setattr(schema, "SCHEMA_VERSION", version)
        return Store(path)


def test_a_version_8_file_gets_the_index_that_reads_a_projects_items_by_role(tmp_path):
    """Version 9 indexes items by (project, role, item): opening a project reads each role's ids from
    that index alone, in item order, instead of walking all of the project's items per role."""
    path = tmp_path / "v8.db"
    with _store_at_version(path, 8) as store:
        pid = store.create_project(name="p", dataset="d", label_column="y", sensitive="s", split_seed=0,
                                   strategy="random", trainers=["erm"], budget=3, metric="f1", threshold=0.1,
                                   items=[{"item_id": i, "role": ("pool", "test", "seed")[i % 3]}
                                          for i in range(30, 0, -1)])
    assert read(path, "PRAGMA user_version") == [(8,)]
    plan = "EXPLAIN QUERY PLAN SELECT item_id FROM items WHERE project_id = 1 AND role = 'pool' ORDER BY item_id"
    assert "COVERING INDEX" not in str(read(path, plan))
    with Store(path) as store:
        assert store._schema_version() == SCHEMA_VERSION > 8
        assert "USING COVERING INDEX items_role_item" in str(store._tuples(plan))
        assert store.item_ids(pid, "pool") == list(range(3, 31, 3))
        assert store.item_ids(pid, "test") == list(range(1, 31, 3))
        assert store.item_ids(pid, "seed") == list(range(2, 31, 3))
    Store(tmp_path / "new.db").close()
    assert shape(path) == shape(tmp_path / "new.db")


def test_a_version_9_ranking_is_kept_as_one_chunk_and_leases_go_on_in_its_order(tmp_path):
    """Version 10 writes an order in chunks; a version-9 file's ranking (one blob of int32 ids, one of
    float32 scores, its head in items.rank, as the version-9 store wrote them) becomes one chunk with
    nothing lost, and leases past its head follow it."""
    path = tmp_path / "v9.db"
    order = np.random.default_rng(0).permutation(40)
    scores = np.linspace(1, 0, 40, dtype=np.float32)
    with _store_at_version(path, 9) as store:
        pid = store.create_project(name="p", dataset="d", label_column="y", sensitive="s", split_seed=0,
                                   strategy="random", trainers=["erm"], budget=40, metric="f1", threshold=0.1,
                                   items=[{"item_id": i, "role": "pool"} for i in range(40)])
        ann = store.add_annotator("ann")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO ranking_orders VALUES (?, 3, ?, ?)",
                     [pid, order.astype(np.int32).tobytes(), scores.tobytes()])
        conn.execute("INSERT INTO rankings VALUES (?, 3, 40, 10, '2026-11-25T00:00:00.000000+00:00')", [pid])
        conn.executemany("UPDATE items SET rank = ?, score = ? WHERE item_id = ?",
                         [(n, float(scores[n]), int(item)) for n, item in enumerate(order[:10])])
    with Store(path) as store:
        assert store._schema_version() == SCHEMA_VERSION >= 10
        stored = store.ranking(pid)
        assert (stored["version"], stored["size"], stored["queue_depth"]) == (3, 40, 10)
        np.testing.assert_array_equal(stored["item_ids"], order)
        np.testing.assert_array_equal(stored["scores"], scores)
        store.queue_chunk = 7
        taken = []
        while (row := store.lease_next_item(pid, ann)) is not None:
            taken.append(row["item_id"])
            store.submit_label(pid, row["item_id"], ann, 1)
        assert taken == order.tolist()
        store.set_ranking(pid, order[::-1])  # a new ranking replaces the migrated one, which is deleted
        assert store.ranking(pid)["version"] == 4
        assert store._tuples("SELECT COUNT(*) FROM ranking_orders")[0][0] == 1
    Store(tmp_path / "new.db").close()
    assert shape(path) == shape(tmp_path / "new.db")
