"""FR-Train: fair and robust adversarial training (Roh, Lee, Whang & Suh, ICML 2020).

A classifier (the "generator") plays against two discriminators:

* the **fairness discriminator** ``D_f`` reads the classifier's logit and
  predicts the sensitive group z (disparate impact, §3.1); for equalized odds
  it is conditioned on the label, one ``Linear(1→1)`` per value of y
  (Appendix A.2, Theorem 3), and for equal opportunity it only sees rows with
  y = 1;
* the **robustness discriminator** ``D_r`` (``Linear(d→16)–LeakyReLU(0.2)–
  Linear(16→1)–sigmoid``) tells clean validation rows ``(x, z, y)`` (label 1)
  from training rows with the classifier's prediction ``(x, z, ŷ)`` (label 0),
  §3.2.

Classifier loss after warm-up (§3.3 and the authors' code; signs checked
against the paper: ``L_2 = max_D Σ log D = −BCE(D_f)``, and the classifier
*minimises* ``L_1 + λf·L_2 + λr·L_3``)::

    (1 − λf − λr)·mean(w·BCE(ŷ, y)) − λf·mean(w·BCE(D_f(ŷ), z)) − λr·BCE(D_r(x, z, ŷ), 0)

Choices where the paper is silent or inconsistent, stated here:

* **Gradient through D_r.** ``ŷ`` in the robustness term stays attached to the
  classifier's graph, so the λr term moves the classifier (the authors'
  clean-data notebook detaches it, which silently turns robust training off).
  ``ŷ`` is the probability ``sigmoid(logit)`` on the same 0/1 scale as the
  validation labels (the authors feed the raw logit next to ±1 labels).
  ``robust_input="logit"`` feeds the raw logit instead, and
  ``label_coding="pm1"`` codes the true labels D_r sees as ±1 (and a
  probability ŷ as ``2p − 1``); ``robust_input="logit", label_coding="pm1"``
  is the authors' convention. ŷ stays attached in every option.
* **Example weights.** The paper writes ``W = R + D·(1 − R)`` with
  ``R = σ(L_c / L_d − C)``; the authors' code computes ``W = R·D + (1 − R)``.
  We implement the code's form. The paper's stated intent is to rely on D_r
  "when we know it is performing at least as well as the classifier": R grows
  when the classifier's loss is large relative to D_r's loss (D_r doing well),
  so R must be the weight *on D*; the printed formula would lean on D exactly
  when D_r is doing badly. ``L_c`` is the classifier's weighted BCE (the
  paper's "classifier's loss", always positive; the code uses the last total
  generator loss, which goes negative after warm-up), ``L_d`` D_r's last loss.
  ``reweight_loss="generator"`` uses the last total classifier loss, as the
  authors' code does.
  Weights are recomputed every ``reweight_every`` epochs after warm-up and
  apply to the BCE and the fairness term (§3.3). ``reweight=False`` keeps
  every weight at 1 (Table 5's "without re-weighting").
* **Schedule.** As in the authors' code, each epoch is one full-batch
  discriminator step each; the classifier steps every epoch during warm-up and
  every ``d_steps``-th epoch afterwards (the 1:3 / 1:5 ratio of Appendix A.4).
  During warm-up the classifier trains on BCE only and D_f is frozen (A.4);
  D_r already trains so that its scores mean something when weighting starts.
* **Classifier input.** The classifier reads ``X`` exactly as given, so the
  returned :class:`~fairal.trainers.models.FittedModel` predicts from the same columns
  as every other fairal model. The paper's classifier reads ``[x, z]``: load
  data with ``include_sensitive=True`` (e.g. ``make_synthetic(...,
  include_sensitive=True)``) to reproduce it. The discriminators take z from
  ``group`` (0/1 for two groups, one-hot otherwise).
* **Exposed scores.** ``model.details.robustness_scores`` (and
  ``details.label_trust``) is ``D_r(x, z, y)`` on the training rows *with their
  given labels* — how clean-looking each training label is (low = suspected
  poisoned; None when ``lambda_r = 0``); ``info["prediction_scores"]`` is
  ``D_r(x, z, ŷ)``, the quantity the weights are built from;
  ``details.example_weights`` the final example weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairal.trainers._base import as_arrays, check_sample_weight, epoch_range
from fairal.trainers.device import default_device
from fairal.trainers.models import FitDetails, FittedModel, make_model, seeded

__all__ = [
    "FRTrainTrainer",
    "FairnessDiscriminator",
    "RobustnessDiscriminator",
    "code_labels",
    "code_prediction",
    "example_weights",
    "holds_group",
    "PRESETS",
    "robust_input",
    "warmup_loss",
    "robustness_term",
]

logger = logging.getLogger(__name__)

Fairness = Literal["disparate_impact", "equalized_odds", "equal_opportunity"]
_FAIRNESS = ("disparate_impact", "equalized_odds", "equal_opportunity")
_ROBUST_INPUT = ("probability", "logit")
_LABEL_CODING = ("01", "pm1")
_REWEIGHT_LOSS = ("bce", "generator")
_WARMUP_LOSS = ("bce", "tanh")
_REWEIGHT_AT = ("offset", "multiples")

#: ``preset=`` options: the authors' released code (github.com/yuji-roh/fr-train). ``authors``: the
#: poisoned-data notebook; ``authors_clean``: the clean-data notebook. A preset sets these attributes
#: (overriding the keyword arguments of the same names).
PRESETS: dict[str, dict[str, object]] = {
    "authors": dict(robust_input="logit", label_coding="pm1", reweight_loss="generator", fair_in_warmup=True,
                    warmup_loss="tanh"),
    "authors_clean": dict(robust_input="logit", label_coding="pm1", reweight_loss="generator", fair_in_warmup=True,
                          detach_robust=True, reweight_at="multiples"),
}


def warmup_loss(logit: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """The classifier's warm-up loss: weighted BCE on the logit, or the authors' poisoned notebook's
    ``0.1 · BCE((tanh(logit) + 1) / 2, y)`` (``kind="tanh"``)."""
    if kind == "tanh":
        p = ((torch.tanh(logit) + 1.0) / 2.0).clamp(1e-7, 1 - 1e-7)
        return 0.1 * (weights * F.binary_cross_entropy(p, y.float(), reduction="none")).mean()
    return (weights * F.binary_cross_entropy_with_logits(logit, y.float(), reduction="none")).mean()


def holds_group(X: torch.Tensor, z: torch.Tensor) -> bool:
    """Whether a column of ``X`` already encodes the two groups (constant within each, different between):
    then D_r reads z from X, as in the authors' code, and no second copy is appended."""
    if X.shape[1] == 0 or int(z.max()) > 1 or int(z.min()) == int(z.max()):
        return False
    a, b = X[z == 0], X[z == 1]
    constant = (a.amax(0) == a.amin(0)) & (b.amax(0) == b.amin(0))
    return bool((constant & (a[0] != b[0])).any())


def code_labels(y: torch.Tensor, label_coding: str = "01") -> torch.Tensor:
    """True 0/1 labels as D_r sees them: 0/1 or ±1 (``label_coding="pm1"``, the authors' code)."""
    y = y.float()
    return 2.0 * y - 1.0 if label_coding == "pm1" else y


def code_prediction(logit: torch.Tensor, robust_input: str = "probability", label_coding: str = "01") -> torch.Tensor:
    """The classifier's prediction ŷ as D_r sees it; keeps the graph (gradients reach the classifier).

    ``"logit"``: the raw logit (the authors' code, whatever the label coding);
    ``"probability"``: ``sigmoid(logit)`` on the labels' scale (``2σ − 1`` for ±1 labels).
    """
    if robust_input == "logit":
        return logit
    prob = torch.sigmoid(logit)
    return 2.0 * prob - 1.0 if label_coding == "pm1" else prob


def _init_normal(module: nn.Module) -> None:
    """The authors' initialisation: Linear weights N(0, 0.2), biases 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.2)
        nn.init.zeros_(module.bias)


class FairnessDiscriminator(nn.Module):
    """Predicts z from the classifier's logit: ``Linear(1→1)`` + sigmoid (or softmax for >2 groups).

    ``n_conditions`` > 1 gives one such layer per label value (equalized odds).
    ``forward`` returns *logits* (sigmoid / softmax are applied in the loss).
    """

    def __init__(self, n_groups: int = 2, n_conditions: int = 1):
        super().__init__()
        out = 1 if n_groups == 2 else n_groups
        self.heads = nn.ModuleList(nn.Linear(1, out) for _ in range(n_conditions))

    def forward(self, logit: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        logit = logit.reshape(-1, 1)
        if len(self.heads) == 1:
            return self.heads[0](logit)
        outs = torch.stack([head(logit) for head in self.heads], dim=0)  # (conditions, n, out)
        return outs[condition, torch.arange(len(logit), device=logit.device)]


class RobustnessDiscriminator(nn.Module):
    """``Linear(d→hidden)–LeakyReLU(0.2)–Linear(hidden→1)``; returns a logit (sigmoid = P(clean))."""

    def __init__(self, n_inputs: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, xzy: torch.Tensor) -> torch.Tensor:
        return self.net(xzy).squeeze(-1)


def example_weights(scores: torch.Tensor, classifier_loss: float, discriminator_loss: float, C: float) -> torch.Tensor:
    """``W = R·D + (1 − R)``, ``R = σ(L_c / L_d − C)`` (the authors' code; see the module docstring)."""
    ratio = classifier_loss / max(discriminator_loss, 1e-12)
    r = 1.0 / (1.0 + np.exp(-(ratio - C)))
    return r * scores + (1.0 - r)


def robust_input(X: torch.Tensor, z: torch.Tensor, y: torch.Tensor, n_groups: int,
                 append_z: bool = True) -> torch.Tensor:
    """D_r's input ``[x, z, y]``: z as one 0/1 column for two groups, one-hot otherwise.

    ``y`` is a true 0/1 label (validation rows) or the classifier's probability
    (training rows); the latter keeps its graph, so gradients reach the classifier.
    ``append_z=False``: ``[x, y]``, for an ``X`` that already holds z (:func:`holds_group`).
    """
    if not append_z:
        return torch.cat([X, y.float().unsqueeze(1)], dim=1)
    zcols = z.float().unsqueeze(1) if n_groups == 2 else F.one_hot(z, n_groups).float()
    return torch.cat([X, zcols, y.float().unsqueeze(1)], dim=1)


def robustness_term(d_robust: nn.Module, fake_input: torch.Tensor) -> torch.Tensor:
    """``BCE(D_r(x, z, ŷ), 0)``: the classifier *maximises* it (enters its loss as ``−λr·term``)."""
    logits = d_robust(fake_input)
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def _encode_groups(group, categories=None) -> tuple[np.ndarray, np.ndarray]:
    group = np.asarray(group)
    if categories is None:
        categories = np.unique(group)
    codes = np.searchsorted(categories, group)
    codes = np.clip(codes, 0, len(categories) - 1)
    unknown = categories[codes] != group
    if unknown.any():
        raise ValueError(f"validation has groups not seen in training: {sorted(set(group[unknown].tolist()))}")
    return codes.astype(np.int64), categories


@dataclass
class _Problem:
    """One fit's training rows as tensors, plus what the discriminators need."""

    X: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor  # group codes 0..n_groups-1
    w_user: torch.Tensor  # the caller's sample weights (1 without them)
    categories: np.ndarray  # the training groups, in code order
    n_groups: int  # at least 2
    device: torch.device
    f_rows: torch.Tensor  # rows D_f sees (y = 1 only, for equal opportunity)
    f_cond: torch.Tensor  # their labels: D_f's condition for equalized odds
    n_conditions: int
    val_input: torch.Tensor | None = None  # D_r's clean input [x, z, y]; None without a validation set
    append_z: bool = True  # False when X already holds z (then D_r reads [x, y])


@dataclass
class _Networks:
    """The classifier, both discriminators and their optimisers."""

    classifier: nn.Module
    d_fair: FairnessDiscriminator
    d_robust: RobustnessDiscriminator
    architecture: dict
    opt_c: torch.optim.Optimizer
    opt_f: torch.optim.Optimizer
    opt_r: torch.optim.Optimizer


@dataclass
class _TrainingState:
    """What one epoch hands the next: example weights, the last losses, the history."""

    r_weight: torch.Tensor
    fake_target: torch.Tensor
    real_target: torch.Tensor | None = None
    last_bce: float = float("nan")
    last_dr: float = float("nan")
    last_r: float = 0.0
    history: list[dict] = field(default_factory=list)


def _fair_cost(problem: _Problem, d_fair: FairnessDiscriminator, logit: torch.Tensor) -> torch.Tensor:
    """Per-row D_f cross-entropy on the rows D_f sees (BCE for two groups)."""
    out = d_fair(logit[problem.f_rows], problem.f_cond if problem.n_conditions > 1 else None)
    if problem.n_groups == 2:
        return F.binary_cross_entropy_with_logits(out.squeeze(-1), problem.z[problem.f_rows].float(), reduction="none")
    return F.cross_entropy(out, problem.z[problem.f_rows], reduction="none")


class FRTrainTrainer:
    """FR-Train (Roh et al., ICML 2020): adversarial fair *and* robust training.

    Parameters
    ----------
    lambda_f, lambda_r : float
        Weights λ1 (fairness) and λ2 (robustness) of the paper; the BCE term gets
        ``1 − λf − λr``, so ``λf + λr < 1``. ``lambda_r = 0`` is fairness-only
        (Adversarial-Debiasing-like) training and needs no validation set.
    fairness : "disparate_impact", "equalized_odds" or "equal_opportunity"
        What D_f enforces: I(Z; Ŷ), I(Z; Ŷ | Y) or I(Z; Ŷ | Y = 1).
    hidden : int
        0 = linear classifier (the paper's synthetic setting); > 0 = one ReLU
        hidden layer of that width (wide tabular data).
    epochs, warmup, d_steps, reweight_every : int
        Full-batch epochs (the paper: 4,000 clean / 10,000 poisoned), BCE-only
        warm-up epochs, discriminator steps per classifier step, and how often
        (in epochs) the example weights are recomputed.
    C : float
        Offset in ``R = σ(L_c / L_d − C)``.
    lr_classifier, lr_fair, lr_robust : float
        Adam (classifier) and SGD (discriminators) learning rates.
    robust_hidden : int
        Width of D_r's hidden layer (16 as in the authors' code).
    robust_input : "probability" or "logit"
        How ŷ enters D_r: ``sigmoid(logit)`` (default) or the raw logit (authors' code).
    label_coding : "01" or "pm1"
        Scale of the labels y (and of a probability ŷ) that D_r sees: 0/1 (default) or ±1 (authors' code).
    reweight_loss : "bce" or "generator"
        ``L_c`` in ``R = σ(L_c / L_d − C)``: the classifier's weighted BCE (default) or its
        last total loss (authors' code; negative once the adversarial terms dominate).
    fair_in_warmup : bool
        Train D_f during warm-up too (the authors' code); by default it is frozen (Appendix A.4).
    warmup_loss : "bce" or "tanh"
        The warm-up loss: weighted BCE, or ``0.1·BCE((tanh(logit) + 1) / 2, y)`` (the authors'
        poisoned-data notebook), see :func:`warmup_loss`.
    detach_robust : bool
        Detach ŷ in the robustness term (the authors' clean-data notebook; it turns the λr
        term's gradient on the classifier off).
    reweight_at : "offset" or "multiples"
        Recompute the weights every ``reweight_every`` epochs counted from the end of warm-up
        (default), or at epochs that are multiples of both ``reweight_every`` and ``d_steps``
        (the authors' clean-data notebook).
    preset : None, "authors" or "authors_clean"
        Set the options above to the authors' released code (:data:`PRESETS`): ``"authors"`` is
        the poisoned-data notebook, ``"authors_clean"`` the clean-data one. Not reproduced: the
        order in which their code draws the initial weights (single seeds differ, 5-seed means
        do not). In every setting D_r sees z once: when ``X`` already holds it
        (:func:`holds_group`, e.g. data loaded with ``include_sensitive=True``), no copy is appended.
    device, random_state
        As for :class:`~fairal.trainers.ERMTrainer`.

    ``fit(data, validation=...)``: ``data`` and ``validation`` are Datasets or
    ``(X, y, group)`` tuples; both need ``group``; ``validation`` (the clean
    set) is required when ``lambda_r > 0``. Binary labels only.
    """

    name = "frtrain"
    uses_validation = True   # the clean set D_r learns from
    needs_validation = True  # whenever lambda_r > 0 (the default)

    def __init__(
        self,
        *,
        lambda_f: float = 0.52,
        lambda_r: float = 0.4,
        fairness: Fairness = "disparate_impact",
        hidden: int = 0,
        epochs: int = 10000,
        warmup: int = 500,
        d_steps: int = 5,
        reweight_every: int = 100,
        C: float = 3.0,
        lr_classifier: float = 1e-3,
        lr_fair: float = 1e-3,
        lr_robust: float = 1e-3,
        robust_hidden: int = 16,
        robust_input: Literal["probability", "logit"] = "probability",
        label_coding: Literal["01", "pm1"] = "01",
        reweight_loss: Literal["bce", "generator"] = "bce",
        reweight: bool = True,
        fair_in_warmup: bool = False,
        warmup_loss: Literal["bce", "tanh"] = "bce",
        detach_robust: bool = False,
        reweight_at: Literal["offset", "multiples"] = "offset",
        preset: Literal["authors", "authors_clean"] | None = None,
        progress: bool = False,
        device: str | torch.device | None = None,
        random_state: int | None = 0,
    ):
        self.lambda_f = lambda_f
        self.lambda_r = lambda_r
        self.fairness = fairness
        self.hidden = hidden
        self.epochs = epochs
        self.warmup = warmup
        self.d_steps = d_steps
        self.reweight_every = reweight_every
        self.C = C
        self.lr_classifier = lr_classifier
        self.lr_fair = lr_fair
        self.lr_robust = lr_robust
        self.robust_hidden = robust_hidden
        self.robust_input = robust_input
        self.label_coding = label_coding
        self.reweight_loss = reweight_loss
        self.reweight = reweight
        self.fair_in_warmup = fair_in_warmup
        self.warmup_loss = warmup_loss
        self.detach_robust = detach_robust
        self.reweight_at = reweight_at
        self.preset = preset
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"preset must be one of {sorted(PRESETS)} or None, got {preset!r}")
            for name, value in PRESETS[preset].items():
                setattr(self, name, value)
        self.progress = progress
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ #
    def _check_params(self) -> None:
        if self.fairness not in _FAIRNESS:
            raise ValueError(f"fairness must be one of {_FAIRNESS}, got {self.fairness!r}")
        for name, allowed in (("robust_input", _ROBUST_INPUT), ("label_coding", _LABEL_CODING),
                              ("reweight_loss", _REWEIGHT_LOSS), ("warmup_loss", _WARMUP_LOSS),
                              ("reweight_at", _REWEIGHT_AT)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.lambda_f < 0 or self.lambda_r < 0 or self.lambda_f + self.lambda_r >= 1:
            raise ValueError(
                f"need lambda_f >= 0, lambda_r >= 0 and lambda_f + lambda_r < 1, got {self.lambda_f}, {self.lambda_r}"
            )
        for name in ("epochs", "warmup", "d_steps", "reweight_every", "hidden", "robust_hidden"):
            value = getattr(self, name)
            if int(value) != value or value < (1 if name in ("d_steps", "reweight_every", "robust_hidden") else 0):
                raise ValueError(f"{name} must be a non-negative integer (d_steps/reweight_every >= 1), got {value!r}")

    def fit(self, data, *, sample_weight=None, validation=None) -> FittedModel:
        """Train; see the class docstring. Runs single-threaded on CPU (tiny full-batch ops)."""
        self._check_params()
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)  # thread hand-offs cost more than these tiny matmuls
            return self._fit(data, sample_weight, validation)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, data, sample_weight, validation) -> FittedModel:
        problem = self._prepare(data, sample_weight, validation)
        nets = self._build_networks(problem)
        state = self._train(problem, nets)
        return self._result(problem, nets, state)

    # ------------------------------------------------------------------ #
    def _prepare(self, data, sample_weight, validation) -> _Problem:
        """The training rows as tensors, checked, with D_r's clean input and D_f's rows."""
        X, y, group = as_arrays(data)
        if group is None:
            raise ValueError("FR-Train needs the sensitive group of each training row (a Dataset or (X, y, group))")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("FR-Train supports binary labels (0/1) only")
        if self.lambda_r > 0 and validation is None:
            raise ValueError(
                "FR-Train with lambda_r > 0 needs a clean validation set: "
                "fit(data, validation=(X_val, y_val, group_val)) or set lambda_r=0 (fairness only)"
            )
        z_np, categories = _encode_groups(group)
        if len(categories) < 2 and self.lambda_f > 0:
            raise ValueError("fairness training needs at least two sensitive groups in the training data")
        n_groups = max(len(categories), 2)
        device = torch.device(self.device) if self.device is not None else default_device()

        checked = check_sample_weight(sample_weight, len(X))
        w_user = np.ones(len(X), dtype=np.float32) if checked is None else checked

        yt = torch.as_tensor(y, device=device)
        # Rows and condition used by the fairness discriminator.
        f_rows = yt == 1 if self.fairness == "equal_opportunity" else torch.ones_like(yt, dtype=torch.bool)
        problem = _Problem(
            X=torch.as_tensor(X, device=device), y=yt, z=torch.as_tensor(z_np, device=device),
            w_user=torch.as_tensor(w_user, device=device), categories=categories, n_groups=n_groups, device=device,
            f_rows=f_rows, f_cond=yt[f_rows], n_conditions=2 if self.fairness == "equalized_odds" else 1,
        )
        problem.append_z = not holds_group(problem.X, problem.z)
        if validation is not None:
            problem.val_input = self._validation_input(validation, problem)
        return problem

    def _validation_input(self, validation, problem: _Problem) -> torch.Tensor:
        """D_r's input ``[x, z, y]`` for the clean validation rows."""
        Xv, yv, gv = as_arrays(validation)
        if gv is None:
            raise ValueError("the validation set needs its sensitive group too")
        if Xv.shape[1] != problem.X.shape[1]:
            raise ValueError(f"validation has {Xv.shape[1]} features, training {problem.X.shape[1]}")
        zv, _ = _encode_groups(gv, problem.categories)
        device = problem.device
        return robust_input(torch.as_tensor(Xv, device=device), torch.as_tensor(zv, device=device),
                            code_labels(torch.as_tensor(yv, device=device), self.label_coding), problem.n_groups,
                            problem.append_z)

    def _build_networks(self, problem: _Problem) -> _Networks:
        """The classifier and both discriminators, seeded and initialised as the authors do, with optimisers."""
        n_features = problem.X.shape[1]
        hidden = int(self.hidden)
        kind: Literal["logistic", "mlp"] = "mlp" if hidden > 0 else "logistic"
        architecture = {"kind": kind, "n_features": n_features, "n_classes": 2, "hidden": [hidden] if hidden else []}
        with seeded(self.random_state):
            classifier = make_model(kind, n_features, n_classes=2, hidden=(hidden,) if hidden else ())
            d_fair = FairnessDiscriminator(problem.n_groups, problem.n_conditions)
            z_width = (1 if problem.n_groups == 2 else problem.n_groups) if problem.append_z else 0
            n_inputs = n_features + z_width + 1
            d_robust = RobustnessDiscriminator(n_inputs, int(self.robust_hidden))
            for net in (classifier, d_fair, d_robust):
                net.apply(_init_normal)
        device = problem.device
        classifier, d_fair, d_robust = classifier.to(device), d_fair.to(device), d_robust.to(device)
        return _Networks(
            classifier=classifier, d_fair=d_fair, d_robust=d_robust, architecture=architecture,
            opt_c=torch.optim.Adam(classifier.parameters(), lr=self.lr_classifier),
            opt_f=torch.optim.SGD(d_fair.parameters(), lr=self.lr_fair),
            opt_r=torch.optim.SGD(d_robust.parameters(), lr=self.lr_robust),
        )

    def _train(self, problem: _Problem, nets: _Networks) -> _TrainingState:
        """The epochs: discriminator steps every epoch, a classifier step every ``d_steps``-th after warm-up."""
        n = len(problem.X)
        state = _TrainingState(r_weight=torch.ones(n, device=problem.device),
                               fake_target=torch.zeros(n, device=problem.device))
        robust = self.lambda_r > 0
        if robust:
            state.real_target = torch.ones(len(cast(torch.Tensor, problem.val_input)), device=problem.device)
        for epoch in epoch_range(int(self.epochs), self, "FR-Train"):
            warm = epoch < self.warmup
            logit = nets.classifier(problem.X).squeeze(-1)
            y_hat = code_prediction(logit, self.robust_input, self.label_coding)
            fake_input = (robust_input(problem.X, problem.z, y_hat, problem.n_groups, problem.append_z)
                          if robust else None)
            self._discriminator_steps(problem, nets, state, logit, fake_input, warm)
            if warm or epoch % self.d_steps == 0:
                self._classifier_step(problem, nets, state, epoch, logit, fake_input, warm)
        return state

    def _discriminator_steps(self, problem: _Problem, nets: _Networks, state: _TrainingState,
                             logit: torch.Tensor, fake_input: torch.Tensor | None, warm: bool) -> None:
        """One step of D_f (frozen during warm-up, Appendix A.4) and one of D_r (clean = 1, training = 0)."""
        if self.lambda_f > 0 and (not warm or self.fair_in_warmup):
            nets.opt_f.zero_grad()
            d_f_loss = _fair_cost(problem, nets.d_fair, logit.detach()).mean()
            d_f_loss.backward()
            nets.opt_f.step()
        if self.lambda_r > 0:
            assert state.real_target is not None and fake_input is not None  # both built when robust
            nets.opt_r.zero_grad()
            d_r_loss = 0.5 * (
                F.binary_cross_entropy_with_logits(nets.d_robust(problem.val_input), state.real_target)
                + F.binary_cross_entropy_with_logits(nets.d_robust(fake_input.detach()), state.fake_target)
            )
            d_r_loss.backward()
            nets.opt_r.step()
            state.last_dr = float(d_r_loss.detach())

    def _classifier_step(self, problem: _Problem, nets: _Networks, state: _TrainingState, epoch: int,
                         logit: torch.Tensor, fake_input: torch.Tensor | None, warm: bool) -> None:
        """One classifier step: weighted BCE during warm-up, the full adversarial loss after it."""
        nets.opt_c.zero_grad()
        weights = problem.w_user * state.r_weight
        bce = F.binary_cross_entropy_with_logits(logit, problem.y.float(), reduction="none")
        if warm:
            loss = warmup_loss(logit, problem.y, weights, self.warmup_loss)
        else:
            loss, weights = self._adversarial_loss(problem, nets, state, epoch, logit, fake_input, weights, bce)
        loss.backward()
        nets.opt_c.step()
        state.last_bce = float((weights * bce).mean().detach())
        if self.reweight_loss == "generator":
            state.last_bce = float(loss.detach())  # the authors' L_c: last total classifier loss
        if epoch % 500 == 0:
            state.history.append({"epoch": epoch, "classifier_bce": state.last_bce, "robust_loss": state.last_dr,
                                  "loss": float(loss.detach())})
            logger.debug("epoch %d: %s", epoch, state.history[-1])

    def _adversarial_loss(self, problem: _Problem, nets: _Networks, state: _TrainingState, epoch: int,
                          logit: torch.Tensor, fake_input: torch.Tensor | None, weights: torch.Tensor,
                          bce: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The classifier's loss after warm-up and the example weights it used (recomputed when due)."""
        robust = self.lambda_r > 0
        if robust and self.detach_robust:
            fake_input = cast(torch.Tensor, fake_input).detach()
        r_logit = nets.d_robust(fake_input) if robust else None  # ŷ attached (unless detach_robust)
        if robust and self.reweight and self._reweight_due(epoch) and np.isfinite(state.last_bce):
            assert r_logit is not None  # computed when robust
            r_scores = torch.sigmoid(r_logit.detach())
            state.r_weight = example_weights(r_scores, state.last_bce, state.last_dr, self.C)
            state.last_r = float(1.0 / (1.0 + np.exp(-(state.last_bce / max(state.last_dr, 1e-12) - self.C))))
            weights = problem.w_user * state.r_weight
        loss = (1.0 - self.lambda_f - self.lambda_r) * (weights * bce).mean()
        # signs: the classifier minimises L1 + λf·L2 + λr·L3 with L2 = −BCE(D_f), L3 = −BCE(D_r(fake), 0)
        if self.lambda_f > 0:
            loss = loss - self.lambda_f * (weights[problem.f_rows] * _fair_cost(problem, nets.d_fair, logit)).mean()
        if robust:
            assert r_logit is not None  # computed when robust
            # = robustness_term
            loss = loss - self.lambda_r * F.binary_cross_entropy_with_logits(r_logit, state.fake_target)
        return loss, weights

    def _reweight_due(self, epoch: int) -> bool:
        if self.reweight_at == "multiples":
            return epoch % self.reweight_every == 0 and epoch % self.d_steps == 0
        return (epoch - self.warmup) % self.reweight_every < self.d_steps

    def _result(self, problem: _Problem, nets: _Networks, state: _TrainingState) -> FittedModel:
        """The fitted classifier with its details (example weights, D_r's scores) and training info."""
        info = {
            "reweight_R": state.last_r,
            "history": state.history,
            "groups": [str(c) for c in problem.categories],
        }
        scores = None
        if self.lambda_r > 0:
            with torch.no_grad():
                X, z, n_groups, d_robust = problem.X, problem.z, problem.n_groups, nets.d_robust
                y_hat = code_prediction(nets.classifier(X).squeeze(-1), self.robust_input, self.label_coding)
                y_code = code_labels(problem.y, self.label_coding)
                append = problem.append_z
                scores = torch.sigmoid(d_robust(robust_input(X, z, y_code, n_groups, append))).cpu().numpy()
                info["prediction_scores"] = torch.sigmoid(
                    d_robust(robust_input(X, z, y_hat, n_groups, append))).cpu().numpy()
        details = FitDetails(example_weights=(problem.w_user * state.r_weight).cpu().numpy(),
                             robustness_scores=scores, label_trust=scores)
        self.discriminators_ = {"fair": nets.d_fair, "robust": nets.d_robust}
        return FittedModel(nets.classifier, architecture=nets.architecture, details=details, info=info)
