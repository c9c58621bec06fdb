"""FR-Train's preset="authors" and the robustness discriminator's input (z once, as in the authors' code)."""

import numpy as np
import pytest
import torch

from fairal.datasets import make_synthetic
from fairal.trainers.frtrain import PRESETS, FRTrainTrainer, holds_group, warmup_loss


@pytest.fixture(scope="module")
def data():
    """The paper's synthetic data twice: X = [x1, x2, z] (the paper's classifier input) and X = [x1, x2]."""
    with_z = make_synthetic(900, seed=1, include_sensitive=True)
    without_z = make_synthetic(900, seed=1)
    parts = {}
    for name, ds in (("with_z", with_z), ("without_z", without_z)):
        X, y, g = np.asarray(ds.X), np.asarray(ds.y), np.asarray(ds.group)
        parts[name] = {"train": (X[:700], y[:700], g[:700]), "val": (X[700:], y[700:], g[700:])}
    return parts


def d_robust_width(trainer: FRTrainTrainer) -> int:
    return trainer.discriminators_["robust"].net[0].in_features


def test_z_reaches_the_robustness_discriminator_once(data):
    # The authors' D_r is Linear(4, 16) on [x1, x2, z, y]: with X = [x1, x2, z] fairal had appended z again (5 inputs).
    trainer = FRTrainTrainer(epochs=3, warmup=1)
    trainer.fit(data["with_z"]["train"], validation=data["with_z"]["val"])
    assert d_robust_width(trainer) == 4
    trainer.fit(data["without_z"]["train"], validation=data["without_z"]["val"])
    assert d_robust_width(trainer) == 4  # [x1, x2] + z + y
    X, _, g = data["with_z"]["train"]
    z = torch.as_tensor((g == g[0]).astype(np.int64))
    assert holds_group(torch.as_tensor(X), z) and not holds_group(torch.as_tensor(X[:, :2]), z)


def test_the_authors_preset_sets_their_conventions():
    trainer = FRTrainTrainer(preset="authors", robust_input="probability")
    assert (trainer.robust_input, trainer.label_coding, trainer.reweight_loss) == ("logit", "pm1", "generator")
    assert trainer.fair_in_warmup and trainer.warmup_loss == "tanh" and not trainer.detach_robust
    clean = FRTrainTrainer(preset="authors_clean")
    assert clean.detach_robust and clean.reweight_at == "multiples" and clean.warmup_loss == "bce"
    assert set(PRESETS) == {"authors", "authors_clean"}
    with pytest.raises(ValueError, match="preset must be one of"):
        FRTrainTrainer(preset="paper")


def test_the_authors_train_the_fairness_discriminator_during_warm_up(data):
    train, val = data["with_z"]["train"], data["with_z"]["val"]

    def d_fair_after(epochs: int, **kw) -> torch.Tensor:
        trainer = FRTrainTrainer(epochs=epochs, warmup=50, random_state=0, **kw)
        trainer.fit(train, validation=val)
        return trainer.discriminators_["fair"].heads[0].weight.detach().clone()

    start = d_fair_after(0)
    assert torch.equal(d_fair_after(30), start)  # default: frozen in warm-up (Appendix A.4)
    assert not torch.equal(d_fair_after(30, preset="authors"), start)


def test_the_authors_warm_up_loss_is_a_tenth_of_bce_on_tanh():
    logit = torch.tensor([-2.0, 0.0, 1.5])
    y = torch.tensor([0, 1, 1])
    p = (torch.tanh(logit) + 1) / 2
    expected = 0.1 * -(torch.log(1 - p[0]) + torch.log(p[1]) + torch.log(p[2])) / 3
    assert torch.isclose(warmup_loss(logit, y, torch.ones(3), "tanh"), expected)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y.float())
    assert torch.isclose(warmup_loss(logit, y, torch.ones(3)), bce)


def test_detaching_yhat_in_the_robustness_term_changes_the_fit(data):
    # The clean-data notebook detaches ŷ, so the λr term stops moving the classifier; the fit must differ.
    train, val = data["with_z"]["train"], data["with_z"]["val"]
    kw = dict(lambda_f=0.0, epochs=120, warmup=20, reweight=False, random_state=0)
    attached = FRTrainTrainer(**kw).fit(train, validation=val)
    detached = FRTrainTrainer(detach_robust=True, **kw).fit(train, validation=val)
    X = val[0]
    assert not np.allclose(attached.predict_proba(X), detached.predict_proba(X))
    assert np.isfinite(detached.predict_proba(X)).all()
