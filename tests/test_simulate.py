import numpy as np
import pytest

from fairal.cli import main
from fairal.datasets import load_compas
from fairal.metrics import METRICS
from fairal.plots import simulation_figures
from fairal.simulate import METHODS, simulate, summarise


@pytest.fixture(scope="module")
def compas():
    return load_compas()


@pytest.fixture(scope="module")
def small_run(compas):
    return simulate(compas, ["random", "entropy"], seeds=[0, 1], budgets=[0, 20, 40], n_initial=20,
                    representation="raw", query_batch=10)


def test_one_row_per_method_seed_budget(small_run):
    assert len(small_run) == 2 * 2 * 3
    assert set(small_run["method"]) == {"random", "entropy"}
    assert set(METRICS) <= set(small_run.columns)


def test_labels_grow_with_the_budget(small_run):
    assert (small_run["n_labels"] == 20 + small_run["budget"]).all()


def test_budget_zero_is_the_same_model_for_every_method(small_run):
    at_zero = small_run[small_run["budget"] == 0]
    for seed, part in at_zero.groupby("seed"):
        assert part["f1"].nunique() == 1


def test_runs_are_reproducible(compas, small_run):
    again = simulate(compas, ["random"], seeds=[1], budgets=[0, 20, 40], n_initial=20,
                     representation="raw")
    expected = small_run[(small_run["method"] == "random") & (small_run["seed"] == 1)]
    np.testing.assert_allclose(again["f1"].to_numpy(), expected["f1"].to_numpy())


def test_summary_has_mean_and_standard_error(small_run):
    summary = summarise(small_run)
    assert list(summary["method"]) == ["random", "entropy"]
    assert (summary["budget"] == 40).all() and (summary["seeds"] == 2).all()
    assert (summary["f1_se"] >= 0).all()


def test_figures_are_built(small_run):
    figures = simulation_figures(small_run, threshold=0.04)
    assert set(figures) == {"budget_f1", "budget_dp", "final_dp_vs_f1", "final_dp_between_vs_f1",
                            "final_erb_vs_f1"}
    assert len(figures["final_dp_vs_f1"].data) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(methods=["oracle"]), "methods must be a non-empty subset"),
        (dict(methods=["random"], budgets=[0, 10_000]), r"largest budget \(10000\) is larger than the pool"),
        (dict(methods=["random"], representation="magic"), "representation must be"),
    ],
)
def test_bad_simulation_input(compas, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(compas, **kwargs)


def test_pretrained_representation_run(compas):
    frame = simulate(compas, ["margin"], seeds=[0], budgets=[0, 20], n_initial=20)
    assert frame["accuracy"].between(0.5, 1.0).all()


def test_simulate_command_writes_csv_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["simulate", "--dataset", "compas", "--methods", "random,margin", "--seeds", "2",
                 "--budget", "30", "--step", "15", "--n-initial", "20", "--representation", "raw",
                 "--out", str(out)])
    assert code == 0
    assert (out / "simulation.csv").exists() and (out / "summary.md").exists()
    assert (out / "figures" / "budget_dp.html").exists()
    assert "margin" in capsys.readouterr().out


def test_every_registered_method_names_a_strategy_and_trainer():
    for method in METHODS.values():
        assert method.strategy and method.trainer


def test_simulated_bands_overlay_a_live_figure(small_run):
    from fairal.plots import budget_figure, simulation_budget_figure

    live = small_run[small_run["method"] == "random"].assign(trainer="erm", strategy="random", id=range(6))
    figure = budget_figure(live, "f1")
    before = len(figure.data)
    simulation_budget_figure(small_run, "f1", figure=figure, dash="dot")
    assert len(figure.data) == before + 2 * 2  # a band and a mean line per simulated method
    assert figure.layout.title.text == "F1 score as labels arrive"
