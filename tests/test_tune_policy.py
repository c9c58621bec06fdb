"""`python -m fairal tune-policy`: the objective, the search space, a tiny search, resuming, pruning, Ray."""

import functools
import sys
import time

import optuna
import plotly.graph_objects as go
import pytest

import fairal.panda.representation
from fairal.cli import main
from fairal.datasets import load_compas, panda_split
from fairal.panda import tuning
from fairal.panda.train import MetaConfig, MetaTrainingData, load_trained_policy

# Tiny tasks on COMPAS (its meta-train half has 2,639 rows); layers, M, inner and proximal steps pinned for speed.
TINY_FLAGS = ["--dataset", "compas", "--iterations", "4", "--eval-every", "2", "--eval-tasks", "2",
              "--budget", "30", "--pool-size", "300", "--validation-size", "300", "--n-initial", "10",
              "--layers", "1", "--meta-batch", "1", "--inner-steps", "10", "--prox-steps", "1"]
TINY = MetaConfig(budget=30, pool_size=300, validation_size=300, n_initial=10, layers=1, meta_batch=1,
                  inner_steps=10, iterations=4, eval_every=2, eval_tasks=2)
FAST_PRETRAIN = functools.partial(fairal.panda.representation.pretrain_representation, hidden=(16, 8), epochs=2)


@pytest.fixture
def quick(monkeypatch):
    """A two-epoch representation and no PNG export (kaleido starts a browser): seconds, not a minute."""
    monkeypatch.setattr(fairal.panda.representation, "pretrain_representation", FAST_PRETRAIN)

    def no_png(*args, **kwargs):
        raise RuntimeError("PNG export off in tests")

    monkeypatch.setattr(go.Figure, "write_image", no_png)


@pytest.fixture(scope="module")
def compas_data():
    compas = load_compas()
    D0 = panda_split(len(compas), seed=0).meta_train
    representation = FAST_PRETRAIN(compas.X[D0], compas.y[D0])
    data = MetaTrainingData(representation=representation, features=representation.transform(compas.X[D0]),
                            y=compas.y[D0], group_codes=compas.group_codes[D0], n_groups=len(compas.group_names))
    return compas, data


def _states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_objective_ranks_every_feasible_trial_above_every_infeasible_one():
    rho = 0.04
    assert tuning.objective_value(0.61, 0.03, rho) == pytest.approx(0.61)
    assert tuning.objective_value(0.0, 0.04, rho) == 0.0  # on the bound is feasible
    worst_feasible = tuning.objective_value(0.0, rho, rho)
    best_infeasible = tuning.objective_value(1.0, rho + 1e-9, rho)
    assert best_infeasible < worst_feasible
    assert tuning.objective_value(0.9, 0.10, rho) < tuning.objective_value(0.1, 0.05, rho)  # less violation wins
    assert tuning.objective_value(0.5, 0.10, rho) == pytest.approx(-0.06)


def test_search_space_covers_the_paper_ranges_and_respects_pins():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    fixed = MetaConfig(heads=4)
    configs = []
    for _ in range(60):
        trial = study.ask()
        configs.append(tuning.suggest(trial, fixed))
        study.tell(trial, 0.0)
    for c in configs:
        assert 1e-7 <= c["lr"] <= 1e-2 and c["layers"] in (1, 3, 5) and c["width"] in (16, 32, 64)
        assert c["meta_batch"] in (1, 2, 4, 8, 16) and c["width"] % fixed.heads == 0
        assert 1e-3 <= c["min_temperature"] <= c["temperature"] <= c["max_temperature"] <= 1.0
        assert c["max_temperature"] >= 0.05 and 10 <= c["inner_steps"] <= 100 and 1 <= c["prox_steps"] <= 10
    assert {c["layers"] for c in configs} == {1, 3, 5} and {c["meta_batch"] for c in configs} == {1, 2, 4, 8, 16}
    # "erm" has no inner steps to search; a pinned field keeps its value; one temperature pins all three
    trial = study.ask()
    erm = tuning.suggest(trial, MetaConfig(inner_learner="erm", layers=3, temperature=0.1), ["layers", "temperature"])
    assert "inner_lr" not in trial.params and "inner_steps" not in trial.params and "layers" not in trial.params
    assert "max_temperature" not in trial.params
    assert erm["layers"] == 3 and erm["temperature"] == 0.1 and erm["max_temperature"] == MetaConfig().max_temperature
    assert tuning.searched(MetaConfig(inner_learner="erm"), ["layers"]) == [
        "lr", "width", "temperature", "min_temperature", "max_temperature", "prox_lr", "prox_steps", "meta_batch"]
    with pytest.raises(ValueError, match="heads 3 divides none"):
        tuning.check_space(MetaConfig(heads=3))
    tuning.check_space(MetaConfig(heads=3, width=33), ["width"])


def test_tiny_search_writes_study_summary_and_a_loadable_policy_then_resumes(tmp_path, quick, capsys):
    study_path = tmp_path / "search" / "study.db"
    started = time.perf_counter()
    assert main(["tune-policy", *TINY_FLAGS, "--trials", "2", "--study", str(study_path)]) == 0
    first = time.perf_counter() - started
    out = capsys.readouterr().out
    folder = study_path.parent
    assert study_path.exists() and (folder / "summary.md").exists()
    assert "| COMPLETE" in (folder / "summary.md").read_text() and "best policy:" in out
    assert (folder / "figures" / "optimization_history.html").exists()
    assert (folder / "figures" / "f1_vs_disparity.html").exists()
    best = folder / "best-policy.pt"
    trained = load_trained_policy(best)
    assert trained.metadata["dataset"] == "compas" and trained.metadata["config"]["iterations"] == 4
    study = optuna.load_study(study_name="panda-compas-race", storage=f"sqlite:///{study_path}")
    assert _states(study) == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        assert {"f1", "disparity", "feasible", "iteration", "seconds", "config", "policy"} <= set(t.user_attrs)
        assert t.value == pytest.approx(tuning.objective_value(t.user_attrs["f1"], t.user_attrs["disparity"], 0.04))
    assert len(list((folder / "policies").glob("trial-*.pt"))) == 2

    # Resume: --trials 3 runs exactly one more trial, with new parameters
    assert main(["tune-policy", *TINY_FLAGS, "--trials", "3", "--study", str(study_path)]) == 0
    assert "2 trials done, 1 to run" in capsys.readouterr().out
    study = optuna.load_study(study_name="panda-compas-race", storage=f"sqlite:///{study_path}")
    assert _states(study) == ["COMPLETE"] * 3 and study.trials[2].params != study.trials[0].params
    # ... and once the target is reached nothing runs
    assert main(["tune-policy", *TINY_FLAGS, "--trials", "3", "--study", str(study_path)]) == 0
    assert "already has 3 trials" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="panda-compas-race", storage=f"sqlite:///{study_path}").trials) == 3
    # another ρ is another search: refused, in one line
    assert main(["tune-policy", *TINY_FLAGS, "--rho", "0.1", "--trials", "4", "--study", str(study_path)]) == 2
    assert "rho: 0.04 stored, 0.1 now" in capsys.readouterr().err
    print(f"first tiny search (2 trials): {first:.1f} s")


def test_pruned_trials_are_recorded_and_no_policy_is_exported(tmp_path, compas_data):
    compas, data = compas_data
    fixed = TINY
    pinned = ["layers", "meta_batch", "inner_steps"]
    study = tuning.open_study(tmp_path / "study.db", "pruned", identity=tuning.identity(compas, fixed, 0, pinned),
                              pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # every value < 2: pruned
    tuning.run_optuna(study, data, compas, fixed, pinned=pinned, trials=2, seed=0, split_seed=0,
                      policies=tmp_path / "policies")
    assert _states(study) == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["iteration"] == 2 for t in study.trials)  # stopped at the first evaluation
    assert tuning.trials_done(study) == 2
    assert tuning.export_best(study, tmp_path / "best.pt") is None
    frame = tuning.summary_frame(study)
    assert list(frame["state"]) == ["PRUNED", "PRUNED"]
    assert "f1_vs_disparity" in tuning.study_figures(study, frame, rho=fixed.rho)


def test_an_interrupted_trial_does_not_count(tmp_path, compas_data, monkeypatch):
    compas, data = compas_data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("fairal.panda.train.meta_train", interrupted)
    study = tuning.open_study(tmp_path / "study.db", "stopped", identity=tuning.identity(compas, TINY, 0))
    with pytest.raises(KeyboardInterrupt):
        tuning.run_optuna(study, data, compas, TINY, pinned=[], trials=3, seed=0, split_seed=0,
                          policies=tmp_path / "policies")
    assert _states(study) == ["FAIL"] and tuning.trials_done(study) == 0  # a resumed search runs 3


def test_ctrl_c_stops_the_command_with_a_summary_and_a_hint_to_resume(tmp_path, quick, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("fairal.panda.train.meta_train", interrupted)
    assert main(["tune-policy", *TINY_FLAGS, "--trials", "2", "--study", str(tmp_path / "study.db")]) == 130
    captured = capsys.readouterr()
    assert "rerun the same command to resume" in captured.err and "no trial completed" in captured.out
    assert (tmp_path / "summary.md").exists()


def test_a_failing_trial_is_recorded_with_its_reason_and_the_search_goes_on(tmp_path, compas_data, monkeypatch):
    compas, data = compas_data

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("fairal.panda.train.meta_train", broken)
    study = tuning.open_study(tmp_path / "study.db", "failing", identity=tuning.identity(compas, TINY, 0))
    tuning.run_optuna(study, data, compas, TINY, pinned=[], trials=2, seed=0, split_seed=0,
                      policies=tmp_path / "policies")
    assert _states(study) == ["FAIL", "FAIL"] and tuning.trials_done(study) == 2
    assert "RuntimeError: boom" in tuning.summary_markdown(study, tuning.summary_frame(study), command="x",
                                                           best_path=None)


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    for flags in (["--trials", "0"], ["--backend", "dask"]):
        with pytest.raises(SystemExit) as stop:
            main(["tune-policy", "--dataset", "compas", *flags])
        assert stop.value.code == 2
    assert "needs a whole number ≥ 1" in capsys.readouterr().err
    study = str(tmp_path / "study.db")
    assert main(["tune-policy", "--dataset", "compas", "--address", "ray://x:10001", "--study", study]) == 2
    assert "--address is for --backend ray" in capsys.readouterr().err
    assert main(["tune-policy", *TINY_FLAGS, "--heads", "3", "--study", study]) == 2
    assert "heads 3 divides none" in capsys.readouterr().err
    assert not (tmp_path / "study.db").exists()


def test_the_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert main(["tune-policy", *TINY_FLAGS, "--backend", "ray", "--study", str(tmp_path / "study.db")]) == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err
    assert not (tmp_path / "study.db").exists()


def test_ray_backend_runs_the_same_search(tmp_path, quick, capsys):
    ray = pytest.importorskip("ray")
    started = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        study_path = tmp_path / "study.db"
        assert main(["tune-policy", *TINY_FLAGS, "--backend", "ray", "--trials", "2", "--study", str(study_path)]) == 0
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name="panda-compas-race", storage=f"sqlite:///{study_path}")
    assert len(study.trials) == 2 and set(_states(study)) <= {"COMPLETE", "PRUNED"}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete and all(t.user_attrs["policy"].endswith(f"trial-{t.number:04d}.pt") for t in complete)
    assert all("lr" in t.user_attrs["config"] for t in study.trials)  # pruned ones too
    load_trained_policy(tmp_path / "best-policy.pt")
    assert (tmp_path / "summary.md").exists()
    print(f"Ray backend, 2 tiny trials on ray.init(num_cpus=1): {seconds:.1f} s")
