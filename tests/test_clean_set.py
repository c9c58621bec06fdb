"""Crowd answers into a project's validation set (fairal.clean_set) on real COMPAS truth."""

import io

import pandas as pd
import pytest

from fairal import auth, clean_set, crowd
from fairal.auth import AccessDenied
from fairal.crowd import CrowdDataError
from fairal.projects import ProjectSettings, create_project, open_project
from fairal.store import NotFoundError, Store


@pytest.fixture
def setup():
    with Store(memory=True) as store:
        admin = auth.create_account(store, "root", "correct horse battery", role="admin")
        pid = create_project(store, ProjectSettings(name="compas", dataset="compas", sensitive="race", budget=30,
                                                    n_initial=20, scale="confidence4", gold_rate=0.1))
        yield store, admin, pid


def crowd_csv(store, pid, n_items=200, answers=5, seed=0, wide=False):
    project = open_project(store, pid)
    items = store.item_ids(pid, "pool")[:n_items]
    truth = {i: int(project.dataset.y[project.positions([i])[0]]) for i in items}
    answers = crowd.simulate_crowd(truth, n_workers=25, answers_per_item=answers, scale="confidence4",
                                   worker_accuracy=(0.6, 0.85), seed=seed)
    frame = crowd.to_wide(answers) if wide else answers[["item_id", "worker_id", "answer"]]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode(), truth


@pytest.mark.parametrize("wide", [False, True])
def test_import_then_build_a_validation_set_better_than_one_answer(setup, wide):
    store, admin, pid = setup
    data, truth = crowd_csv(store, pid, wide=wide)
    assert clean_set.import_crowd_csv(store, pid, data, by=admin) == 1000
    summary = clean_set.build_validation_set(store, pid, by=admin, method="mean_score")
    labels = store.validation_labels(pid)
    assert summary["size"] == len(labels) == 200
    accuracy = sum(labels[i] == t for i, t in truth.items()) / len(truth)
    single = clean_set.build_validation_set(store, pid, by=admin, method="mean_score", max_answers=1)
    single_accuracy = sum(store.validation_labels(pid)[i] == t for i, t in truth.items()) / len(truth)
    assert single["size"] == 200 and accuracy > single_accuracy + 0.03
    report = clean_set.aggregation_report(store, pid)
    assert set(report["group"]) == {"(all)", "African-American", "Caucasian"}
    assert report["accuracy"].between(0, 1).all()


def test_bad_crowd_files_import_nothing(setup):
    store, admin, pid = setup
    good, _ = crowd_csv(store, pid, n_items=5, answers=2)
    cases = [
        (b"item_id,worker_id,answer\n999999999,w1,3\n", NotFoundError, "not in this project"),
        (b"item_id,worker_id,answer\nabc,w1,3\n", CrowdDataError, "numeric item ids"),
        (b"item_id,worker_id,answer\n99999999999999999999,w1,3\n", CrowdDataError,
         r"^crowd.csv: item ids must be the project's numeric item ids; got \['99999999999999999999'\]"),
        (b"item_id,worker_id,answer\n1,w1,\n", CrowdDataError, "^crowd.csv: blank answer on line 2"),
        (good.replace(b",3\n", b",7\n", 1) if b",3\n" in good else b"item_id,worker_id,answer\n1,w,7\n",
         CrowdDataError, "scale"),
        (b"item,who\n1,2\n", CrowdDataError, "column"),
        (b"\xff\xfe\x00garbage", CrowdDataError, None),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            clean_set.import_crowd_csv(store, pid, data, by=admin)
    assert store.crowd_answers(pid) == []
    ann = auth.create_account(store, "ann", "ann-password", by=admin)
    with pytest.raises(AccessDenied):
        clean_set.import_crowd_csv(store, pid, good, by=ann)
    with pytest.raises(ValueError, match="no answers"):
        clean_set.build_validation_set(store, pid, by=admin)
    assert store.validation_info(pid) is None


def test_import_takes_a_column_mapping_and_names_the_file(setup):
    store, admin, pid = setup
    data, _ = crowd_csv(store, pid, n_items=20, answers=3, wide=True)
    renamed = data.replace(b"item_id", b"example_idx").replace(b"answer_", b"ans_")
    with pytest.raises(CrowdDataError, match="^amt_compas.csv: column worker_id_1 has no matching answer_1 column"):
        clean_set.import_crowd_csv(store, pid, renamed.replace(b"ans_", b"rating_"), by=admin,
                                   filename="amt_compas.csv")
    n = clean_set.import_crowd_csv(store, pid, renamed.replace(b"ans_", b"rating_"), by=admin,
                                   filename="amt_compas.csv", columns={"item": "example_idx", "answer": "rating"})
    assert n == 60
    clean_set.remove_crowd_file(store, pid, "amt_compas.csv", by=admin)
    assert clean_set.import_crowd_csv(store, pid, renamed, by=admin, filename="amt2.csv") == 60  # ans_k by default


def test_app_answers_and_quiz_answers_measure_workers(setup):
    store, admin, pid = setup
    gold = store.gold(pid)
    ann = auth.create_account(store, "ann", "ann-password", by=admin)
    for item, value in list(gold.items())[:4]:
        store.record_gold_answer(pid, item, ann.id, 4 if value else 1)
    quality = clean_set.worker_quality(store, pid)
    assert quality.loc["app:ann", "n_gold"] == 4 and quality.loc["app:ann", "accuracy"] == 1.0
    assert 0 < quality.loc["app:ann", "ci_low"] < 1


def test_answer_sources_and_removing_a_file_need_an_admin(setup):
    store, admin, pid = setup
    data, _ = crowd_csv(store, pid, n_items=20, answers=3)
    clean_set.import_crowd_csv(store, pid, data, by=admin, filename="round-1.csv")
    second = pd.read_csv(io.BytesIO(crowd_csv(store, pid, n_items=10, answers=2, seed=5)[0]))
    second["worker_id"] = "round-2:" + second["worker_id"].astype(str)  # other workers, same items
    clean_set.import_crowd_csv(store, pid, second.to_csv(index=False).encode(), by=admin, filename="round-2.csv")
    table = clean_set.answer_sources(store, pid).set_index("source")
    assert table.loc["file round-1.csv", "answers"] == 60 and table.loc["file round-1.csv", "items"] == 20
    assert table.loc["file round-2.csv", "answers"] == 20
    assert table.loc["app annotators (labels)", "answers"] == len(store.answers(pid))
    assert clean_set.imported_files(store, pid) == ["round-1.csv", "round-2.csv"]
    annotator = auth.create_account(store, "someone", "someone-password", by=admin)
    with pytest.raises(AccessDenied):
        clean_set.remove_crowd_file(store, pid, "round-1.csv", by=annotator)
    assert clean_set.imported_files(store, pid) == ["round-1.csv", "round-2.csv"]
    clean_set.remove_crowd_file(store, pid, "round-1.csv", by=admin)
    assert clean_set.imported_files(store, pid) == ["round-2.csv"]
    assert len(store.crowd_answers(pid)) == 20


def test_learning_from_crowds_uses_the_projects_features_and_queues_uncertain_items(setup):
    store, admin, pid = setup
    data, truth = crowd_csv(store, pid, n_items=120, answers=3)
    clean_set.import_crowd_csv(store, pid, data, by=admin)
    labels, _, _ = clean_set.aggregate_labels(store, pid, method="learning_from_crowds")
    assert set(labels.columns) >= {"label", "posterior", "confidence", "classifier"}
    right = sum(int(labels.loc[str(i), "label"]) == y for i, y in truth.items())
    assert right / len(truth) > 0.7
    summary = clean_set.build_validation_set(store, pid, by=admin, method="learning_from_crowds")
    assert summary["size"] == 120 and store.validation_info(pid)["method"] == "learning_from_crowds"
    unsure = clean_set.uncertain_labels(store, pid, min_confidence=0.9)
    assert len(unsure) and (unsure["confidence"] < 0.9).all() and unsure["confidence"].is_monotonic_increasing
    ann = auth.create_account(store, "ann2", "ann-password", by=admin)
    with pytest.raises(AccessDenied):
        clean_set.send_uncertain_for_review(store, pid, by=ann)
    sent = clean_set.send_uncertain_for_review(store, pid, by=admin, min_confidence=0.9, limit=5)
    requests = store.review_requests(pid)
    assert sent == len(requests) == min(5, len(unsure))
    assert {r["item_id"] for r in requests} == {int(i) for i in unsure.index[:5]}
    with pytest.raises(ValueError, match="dawid_skene_4 needs a project with 1-4 confidence answers"):
        binary = create_project(store, ProjectSettings(name="bin", dataset="compas", sensitive="race", budget=30,
                                                       n_initial=20))
        clean_set.aggregate_labels(store, binary, method="dawid_skene_4")
