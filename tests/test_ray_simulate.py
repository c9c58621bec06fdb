"""Sweeps: several learners per method, a resumable output folder, and the Ray backend (same numbers)."""

import pandas as pd
import pytest

from fairal.datasets import load_compas
from fairal.research.simulate import Run, plan_runs, simulate

TIMES = ["select_seconds", "fit_seconds"]
SWEEP = dict(seeds=[0, 1], budgets=[0, 20, 40], n_initial=20, representation="raw", query_batch=10,
             learner=["erm", "cvar"], trainer_params={"cvar": {"epochs": 2}})


@pytest.fixture(scope="module")
def compas():
    return load_compas()


@pytest.fixture(scope="module")
def serial(compas):
    return simulate(compas, ["random", "entropy", "fairlearn"], **SWEEP)


def test_plan_runs_each_learner_once_and_fixed_trainer_methods_once():
    runs = plan_runs(["random", "fairlearn"], ["erm", "irw"], [0, 1])
    assert runs[:3] == [Run("random", "erm", 0), Run("random", "irw", 0), Run("fairlearn", "fairlearn", 0)]
    assert len(runs) == 6


def test_a_sweep_has_a_row_per_method_trainer_seed_budget(serial):
    assert len(serial) == (2 * 2 + 1) * 2 * 3
    assert set(serial.loc[serial["method"] == "random", "trainer"]) == {"erm", "cvar"}
    assert set(serial.loc[serial["method"] == "fairlearn", "trainer"]) == {"fairlearn"}


def test_a_stopped_sweep_resumes_from_its_folder(compas, serial, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    first = simulate(compas, ["random"], checkpoint=folder, **SWEEP)
    assert len(list(folder.glob("*.csv"))) == 4 and (folder / "settings.json").exists()
    calls = []
    import fairal.research.simulate as sim

    real = sim._run
    monkeypatch.setattr(sim, "_run", lambda sweep, run: calls.append(run) or real(sweep, run))
    both = simulate(compas, ["random", "entropy"], checkpoint=folder, **SWEEP)
    assert {run.method for run in calls} == {"entropy"}  # the random runs were read back, not run again
    pd.testing.assert_frame_equal(both[both["method"] == "random"].reset_index(drop=True), first)
    expected = serial[serial["method"] != "fairlearn"].reset_index(drop=True)
    pd.testing.assert_frame_equal(both.drop(columns=TIMES), expected.drop(columns=TIMES))
    with pytest.raises(ValueError, match="another sweep .*budgets"):
        simulate(compas, ["random"], checkpoint=folder, **{**SWEEP, "budgets": [0, 30]})


def test_ray_backend_gives_the_serial_numbers(compas, serial, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        seen = []
        frame = simulate(compas, ["random", "fairlearn"], backend="ray", progress=seen.append,
                         checkpoint=tmp_path / "runs", **SWEEP)
    finally:
        ray.shutdown()
    assert len(seen) == 6 and all("seed" in message for message in seen)
    expected = serial[serial["method"] != "entropy"].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.drop(columns=TIMES), expected.drop(columns=TIMES))
    assert len(list((tmp_path / "runs").glob("*.csv"))) == 6


def test_unknown_backend_is_a_clear_error(compas):
    with pytest.raises(ValueError, match="backend must be one of"):
        simulate(compas, ["random"], backend="dask")


def test_simulate_command_resumes_from_its_output_folder(tmp_path, capsys):
    from fairal.cli import main

    flags = ["simulate", "--dataset", "compas", "--methods", "random", "--learner", "erm,head", "--seeds", "1",
             "--budget", "20", "--step", "10", "--n-initial", "20", "--representation", "raw",
             "--out", str(tmp_path / "sim")]
    assert main(flags) == 0
    first = pd.read_csv(tmp_path / "sim" / "simulation.csv")
    assert set(first["trainer"]) == {"erm", "head"}
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sim" / "runs").glob("*.csv")}
    assert len(written) == 2
    assert main([*flags[:4], "random,entropy", *flags[5:]]) == 0  # one more method: only its runs are new
    again = pd.read_csv(tmp_path / "sim" / "simulation.csv")
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sim" / "runs").glob("random*.csv")} == written
    pd.testing.assert_frame_equal(again[again["method"] == "random"].reset_index(drop=True), first)
    capsys.readouterr()
    assert main([*flags, "--address", "ray://head:10001"]) == 2
    assert "--address is for --backend ray" in capsys.readouterr().err


def test_the_ray_backend_without_ray_says_how_to_install_it(compas, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(ValueError, match="pip install -r requirements-ray.txt"):
        simulate(compas, ["random"], budgets=[0, 10], n_initial=20, representation="raw", backend="ray")
