"""Trainer steps sized for the device: batch_size=None is the paper's batch on the CPU, large on CUDA."""

import numpy as np
import pytest

import fairal.trainers.forml as forml_module
import fairal.trainers.irw as irw_module
from fairal.datasets import load_compas
from fairal.trainers import make_trainer
from fairal.trainers.device import LARGE_BATCH, MIN_STEPS, fit_schedule


def test_fit_schedule_on_the_cpu_keeps_the_default_and_an_explicit_batch_everywhere():
    assert fit_schedule(450, batch_size=None, default_batch=32, epochs=20, device="cpu") == (32, 20)
    assert fit_schedule(450, batch_size=64, default_batch=32, epochs=20, device="cpu") == (64, 20)
    assert fit_schedule(450, batch_size=64, default_batch=32, epochs=20, device="cuda") == (64, 20)


def test_fit_schedule_on_cuda_uses_large_batches_and_enough_steps():
    # 450 rows: one full batch per epoch, MIN_STEPS steps (the default makes 20 * 15 = 300)
    assert fit_schedule(450, batch_size=None, default_batch=32, epochs=20, device="cuda") == (450, MIN_STEPS)
    # 20k rows: 5 steps of 4,096 per epoch; 40 epochs make 200 steps instead of 12,500
    batch, epochs = fit_schedule(20_000, batch_size=None, default_batch=32, epochs=20, device="cuda")
    assert batch == LARGE_BATCH and epochs * -(-20_000 // batch) >= MIN_STEPS and epochs == 40
    # never more steps than the default batch would make: 10 rows, 20 epochs of one step
    assert fit_schedule(10, batch_size=None, default_batch=32, epochs=20, device="cuda") == (10, 20)


@pytest.fixture(scope="module")
def compas():
    data = load_compas()
    rows = np.random.default_rng(0).choice(len(data), size=300, replace=False)
    return data.X[rows], data.y[rows], data.group[rows]


@pytest.mark.parametrize(("name", "module", "default"), [("irw", irw_module, 32), ("cvar", irw_module, 32),
                                                        ("forml", forml_module, 128)])
def test_trainers_follow_the_schedule(compas, monkeypatch, name, module, default):
    cpu = make_trainer(name, epochs=3, device="cpu")
    cpu_model = cpu.fit(compas)
    assert (cpu.batch_size_, cpu.epochs_) == (default, 3)  # the paper's batch: unchanged on the CPU
    explicit = make_trainer(name, epochs=3, batch_size=default, device="cpu").fit(compas)
    np.testing.assert_array_equal(cpu_model.predict_proba(compas[0]), explicit.predict_proba(compas[0]))

    # as on CUDA (the schedule is told the device is CUDA; the tensors stay on the CPU here)
    # FORML keeps its explicit default there (large batches moved its result); batch_size=None opts in
    as_cuda = lambda n, **kw: fit_schedule(n, **{**kw, "device": "cuda", "min_steps": 12})  # noqa: E731
    monkeypatch.setattr(module, "fit_schedule", as_cuda)
    kept = make_trainer(name, epochs=3, device="cpu")
    kept.fit(compas)
    assert (kept.batch_size_ == default) == (name == "forml")
    big = make_trainer(name, epochs=3, batch_size=None, device="cpu")
    big_model = big.fit(compas)
    rows = len(compas[0]) - (30 if name == "forml" else 0)  # FORML holds out exemplars without a validation set
    assert big.batch_size_ == rows and big.epochs_ > 3
    monkeypatch.undo()
    same = make_trainer(name, epochs=big.epochs_, batch_size=rows, device="cpu").fit(compas)
    np.testing.assert_array_equal(big_model.predict_proba(compas[0]), same.predict_proba(compas[0]))
