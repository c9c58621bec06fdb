"""benchmarks/frontier.py on a tiny configuration: the table's rows, finite metrics, and the cache."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fairal.datasets import load_compas
from fairal.research.methods import METHODS

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "frontier.py"


@pytest.fixture(scope="module")
def frontier():
    spec = importlib.util.spec_from_file_location("frontier_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compas():
    return load_compas()


CONFIG = dict(strategies=["random", "margin"], trainers=["erm", "head"], seeds=[0], budget=20, rho=0.04,
              representation="raw", policy_path=None)


def test_table_rows_metrics_and_cache(frontier, compas, tmp_path, monkeypatch):
    cache = tmp_path / "frontier.csv"
    messages = []
    frame = frontier.run(compas, cache=cache, log=messages.append, **CONFIG)
    assert len(frame) == 4
    assert set(zip(frame["strategy"], frame["trainer"], strict=True)) == {
        (s, t) for s in ("random", "margin") for t in ("erm", "head")}
    for column in ("f1", "demographic_parity_to_overall", "error_rate_balance"):
        assert np.isfinite(frame[column].to_numpy(dtype=float)).all()
    assert (frame["n_labels"] == 50 + 20).all()

    summary = frontier.summarise(frame, 0.04)
    assert len(summary) == 4 and (summary["seeds"] == 1).all()
    assert list(summary["strategy"]) == ["random", "random", "margin", "margin"]  # the script's order
    text = frontier.report(frame, rho=0.04, budget=20, out=tmp_path, command="test", policy_path=None, png=False)
    assert "| random" in text and ("Best feasible pair" in text or "No pair reaches" in text)
    assert (tmp_path / "frontier.md").exists() and (tmp_path / "frontier.html").exists()

    # A rerun runs nothing: every unit is cached.
    def boom(*args, **kwargs):
        raise AssertionError("a cached unit was run again")

    monkeypatch.setattr(frontier, "run_unit", boom)
    again = frontier.run(compas, cache=cache, log=messages.append, **CONFIG)
    assert "4 units cached" in messages[-1] and "0 to run" in messages[-1]
    assert len(again) == 4
    # Another configuration (here ρ) does not reuse those rows.
    monkeypatch.undo()
    other = frontier.read_cache(cache, {"rho": 0.05})
    assert other.empty


def test_panda_with_any_trainer_is_temporary(frontier):
    name, extra = frontier._method("panda", "fairlearn")
    assert extra[name].strategy == "panda" and extra[name].trainer == "fairlearn"
    assert name not in METHODS  # registered only for the duration of a simulate call
    assert frontier._method("margin", "irw") == ("margin", {})
