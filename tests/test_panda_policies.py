"""PANDA only where a policy fits: policy files for a CSV (command line and background jobs), the fit
check, projects refusing PANDA without a fitting policy, and the Setup page offering it."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from fairal import auth
from fairal.cli import main
from fairal.datasets import load, load_csv
from fairal.panda.strategy import DEFAULT_POLICY, policies_for, policy_misfit
from fairal.panda.train import load_trained_policy
from fairal.policy_jobs import queue_policy_job
from fairal.projects import CsvSource, ProjectError, ProjectSettings, create_project, open_project, use_policy
from fairal.retrainer import Retrainer
from fairal.store import Store

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")


def small_csv(n: int = 800) -> bytes:
    """Two numeric columns, one categorical, a group and a yes/no label that depends on them."""
    rng = np.random.default_rng(0)
    group = rng.choice(["A", "B"], n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n) + (group == "A")
    label = x1 + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0.3
    frame = pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "color": rng.choice(["red", "blue"], n),
                          "group": group, "outcome": np.where(label, "yes", "no")})
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "small.csv"
    path.write_bytes(small_csv())
    return path


def csv_source(data: bytes = None, name: str = "upload.csv") -> CsvSource:
    return CsvSource(data=data or small_csv(), label="outcome", sensitive="group", filename=name)


def test_train_policy_command_reads_a_csv(csv_file, tmp_path, capsys):
    out = tmp_path / "small.pt"
    code = main(["train-policy", "--csv", str(csv_file), "--label", "outcome", "--sensitive", "group",
                 "--iterations", "2", "--eval-every", "1", "--eval-tasks", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "meta-train half has 400 rows" in capsys.readouterr().out  # tasks sized to the data
    trained = load_trained_policy(out)
    assert trained.metadata["dataset"] == "small" and trained.metadata["sensitive"] == "group"
    data = load_csv(csv_file, label="outcome", sensitive="group")
    assert policy_misfit(out, data) is None
    # the same data uploaded under another name fits (same feature columns); another sensitive column does not
    assert policy_misfit(out, load_csv(csv_file, label="outcome", sensitive="group", name="x.csv")) is None
    assert "sensitive attribute group, not color" in policy_misfit(
        out, load_csv(csv_file, label="outcome", sensitive="color"))


def test_train_policy_command_needs_label_and_sensitive_with_csv(csv_file, capsys):
    assert main(["train-policy", "--csv", str(csv_file), "--iterations", "1"]) == 2
    assert "--csv needs --label and --sensitive" in capsys.readouterr().err


def test_shipped_policy_fits_adult_sex_only(csv_file):
    assert policies_for(load("adult", sensitive="sex"))[0] == DEFAULT_POLICY
    assert policies_for(load("adult", sensitive="race")) == []  # 98 features: race is left out of X
    csv = load_csv(csv_file, label="outcome", sensitive="group")
    assert policies_for(csv) == []
    assert "reads 101 input features" in policy_misfit(DEFAULT_POLICY, csv)
    assert "`" not in policy_misfit(DEFAULT_POLICY, csv)


def test_create_project_refuses_panda_without_a_fitting_policy(tmp_path):
    with Store(tmp_path / "fairal.db") as store:
        with pytest.raises(ProjectError, match="no PANDA policy fits") as error:
            create_project(store, ProjectSettings(name="csv", strategy="panda", budget=20), csv=csv_source())
        assert "`" not in str(error.value) and "train-policy --csv" in str(error.value)
        with pytest.raises(ProjectError, match="does not fit"):
            create_project(store, ProjectSettings(name="german", dataset="german", strategy="panda", budget=20,
                                                  policy_path=str(DEFAULT_POLICY)))
        assert store.projects() == []


def test_a_policy_job_trains_a_policy_the_project_then_ranks_with(tmp_path):
    db = tmp_path / "fairal.db"
    with Store(db) as store:
        admin = auth.create_account(store, "admin", "correct horse", role="admin")
        project_id = create_project(store, ProjectSettings(name="csv", budget=20, n_initial=20), csv=csv_source())
        with pytest.raises(auth.AccessDenied):
            queue_policy_job(store, project_id, iterations=2, by=auth.User(99, "ann", "annotator"))
        job_id = queue_policy_job(store, project_id, iterations=2, by=admin)
        with pytest.raises(ProjectError, match="already queued"):
            queue_policy_job(store, project_id, iterations=2, by=admin)
        assert store.policy_job(job_id)["status"] == "queued"
        Retrainer(db).run_once(store)  # a lone pass runs the job inline (the looping worker uses a thread)
        job = store.policy_job(job_id)
        assert job["status"] == "done", job["message"]
        assert job["iteration"] == 2 and Path(job["policy_path"]).parent == tmp_path / "policies"
        trained = load_trained_policy(job["policy_path"])  # weights_only=True inside
        assert trained.metadata["dataset"] == "upload.csv" and trained.group_names == ["A", "B"]
        # the trained policy is now offered for the same data: a new project may use it
        create_project(store, ProjectSettings(name="csv panda", strategy="panda", budget=20, n_initial=20),
                       csv=csv_source(name="again.csv"))
        use_policy(store, project_id, job["policy_path"], by=admin)
        project = open_project(store, project_id)
        assert project.strategy_name == "panda" and project.policy_path == Path(job["policy_path"])
        ranking = store.ranking(project_id)  # the policy's order of the whole pool
        assert sorted(ranking["item_ids"]) == sorted(project.dataset.ids[project.pool])


def test_a_failing_policy_job_is_recorded(tmp_path):
    db = tmp_path / "fairal.db"
    with Store(db) as store:
        project_id = create_project(store, ProjectSettings(name="tiny", budget=5, n_initial=10),
                                    csv=csv_source(small_csv(44)))
        job_id = queue_policy_job(store, project_id, iterations=1)
        Retrainer(db).run_once(store)
        job = store.policy_job(job_id)
        assert job["status"] == "failed" and "meta-training needs at least 30 rows" in job["message"]


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    with Store(path) as store:
        auth.create_account(store, "admin", "correct horse", role="admin")
    monkeypatch.setenv("FAIRAL_DB", str(path))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    return path


def test_setup_page_offers_panda_only_where_a_policy_fits(app_db):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_name").input("admin")
    at.text_input(key="login_password").input("correct horse")
    at.button(key="login_submit").click().run()
    at.switch_page("app_pages/setup.py").run()
    assert not at.exception
    assert at.selectbox(key="setup_dataset").value == "adult"
    assert "panda" in at.selectbox(key="setup_strategy").options  # the shipped policy: adult, sex
    at.selectbox(key="setup_sensitive").select("race").run()
    assert "panda" not in at.selectbox(key="setup_strategy").options
    at.selectbox(key="setup_dataset").select("german").run()
    assert "panda" not in at.selectbox(key="setup_strategy").options
    captions = " ".join(c.value for c in at.caption)
    assert "PANDA is not offered" in captions and "`" not in captions
    # the current project (the Adult demo) gets the policy-job section; no worker runs in tests
    assert at.number_input(key="setup_policy_iterations").value == 100
    assert any("No background worker runs" in w.value for w in at.warning)
    at.button(key="setup_policy_train").click().run()
    assert not at.exception
    assert any("queued" in p.proto.text for p in at.get("progress"))
    with Store(app_db) as store:
        assert [j["status"] for j in store.policy_jobs()] == ["queued"]


def test_a_job_left_running_by_a_dead_worker_is_marked_failed(tmp_path):
    with Store(tmp_path / "fairal.db") as store:
        project_id = create_project(store, ProjectSettings(name="german", dataset="german", budget=20))
        job_id = store.add_policy_job(project_id, iterations=1)
        assert store.claim_policy_job("dead worker")["status"] == "running"
        assert store.claim_policy_job("new worker", stale_seconds=0) is None
        job = store.policy_job(job_id)
        assert job["status"] == "failed" and "worker stopped" in job["message"]
        store.delete_project(project_id)  # its jobs go with it
        assert store.policy_jobs() == []
