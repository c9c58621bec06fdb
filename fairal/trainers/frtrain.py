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
  returned :class:`~fairal.models.FittedModel` predicts from the same columns
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
from typing import Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairal.device import default_device
from fairal.models import FitDetails, FittedModel, make_model, seeded
from fairal.trainers._base import as_arrays, check_sample_weight, epoch_range

__all__ = [
    "FRTrainTrainer",
    "FairnessDiscriminator",
    "RobustnessDiscriminator",
    "code_labels",
    "code_prediction",
    "example_weights",
    "robust_input",
    "robustness_term",
]

logger = logging.getLogger(__name__)

Fairness = Literal["disparate_impact", "equalized_odds", "equal_opportunity"]
_FAIRNESS = ("disparate_impact", "equalized_odds", "equal_opportunity")
_ROBUST_INPUT = ("probability", "logit")
_LABEL_CODING = ("01", "pm1")
_REWEIGHT_LOSS = ("bce", "generator")


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


def robust_input(X: torch.Tensor, z: torch.Tensor, y: torch.Tensor, n_groups: int) -> torch.Tensor:
    """D_r's input ``[x, z, y]``: z as one 0/1 column for two groups, one-hot otherwise.

    ``y`` is a true 0/1 label (validation rows) or the classifier's probability
    (training rows); the latter keeps its graph, so gradients reach the classifier.
    """
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
        self.progress = progress
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ #
    def _check_params(self) -> None:
        if self.fairness not in _FAIRNESS:
            raise ValueError(f"fairness must be one of {_FAIRNESS}, got {self.fairness!r}")
        for name, allowed in (("robust_input", _ROBUST_INPUT), ("label_coding", _LABEL_CODING),
                              ("reweight_loss", _REWEIGHT_LOSS)):
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
        X, y, group = as_arrays(data)
        if group is None:
            raise ValueError("FR-Train needs the sensitive group of each training row (a Dataset or (X, y, group))")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("FR-Train supports binary labels (0/1) only")
        robust = self.lambda_r > 0
        if robust and validation is None:
            raise ValueError(
                "FR-Train with lambda_r > 0 needs a clean validation set: "
                "fit(data, validation=(X_val, y_val, group_val)) or set lambda_r=0 (fairness only)"
            )
        z_np, categories = _encode_groups(group)
        n_groups = len(categories)
        if n_groups < 2 and self.lambda_f > 0:
            raise ValueError("fairness training needs at least two sensitive groups in the training data")
        n_groups = max(n_groups, 2)
        device = torch.device(self.device) if self.device is not None else default_device()

        checked = check_sample_weight(sample_weight, len(X))
        w_user = np.ones(len(X), dtype=np.float32) if checked is None else checked

        Xt = torch.as_tensor(X, device=device)
        yt = torch.as_tensor(y, device=device)
        zt = torch.as_tensor(z_np, device=device)
        wt_user = torch.as_tensor(w_user, device=device)
        val_input = None
        if validation is not None:
            Xv, yv, gv = as_arrays(validation)
            if gv is None:
                raise ValueError("the validation set needs its sensitive group too")
            if Xv.shape[1] != X.shape[1]:
                raise ValueError(f"validation has {Xv.shape[1]} features, training {X.shape[1]}")
            zv, _ = _encode_groups(gv, categories)
            val_input = robust_input(torch.as_tensor(Xv, device=device), torch.as_tensor(zv, device=device),
                                  code_labels(torch.as_tensor(yv, device=device), self.label_coding), n_groups)

        # Rows and condition used by the fairness discriminator.
        if self.fairness == "equal_opportunity":
            f_rows = yt == 1
            n_conditions = 1
        else:
            f_rows = torch.ones_like(yt, dtype=torch.bool)
            n_conditions = 2 if self.fairness == "equalized_odds" else 1
        f_cond = yt[f_rows]

        hidden = int(self.hidden)
        kind: Literal["logistic", "mlp"] = "mlp" if hidden > 0 else "logistic"
        architecture = {"kind": kind, "n_features": X.shape[1], "n_classes": 2, "hidden": [hidden] if hidden else []}
        with seeded(self.random_state):
            classifier = make_model(kind, X.shape[1], n_classes=2, hidden=(hidden,) if hidden else ())
            d_fair = FairnessDiscriminator(n_groups, n_conditions)
            n_inputs = X.shape[1] + (1 if n_groups == 2 else n_groups) + 1
            d_robust = RobustnessDiscriminator(n_inputs, int(self.robust_hidden))
            for net in (classifier, d_fair, d_robust):
                net.apply(_init_normal)
        classifier, d_fair, d_robust = classifier.to(device), d_fair.to(device), d_robust.to(device)
        opt_c = torch.optim.Adam(classifier.parameters(), lr=self.lr_classifier)
        opt_f = torch.optim.SGD(d_fair.parameters(), lr=self.lr_fair)
        opt_r = torch.optim.SGD(d_robust.parameters(), lr=self.lr_robust)

        def fair_cost(logit: torch.Tensor) -> torch.Tensor:
            """Per-row D_f cross-entropy on the rows D_f sees (BCE for two groups)."""
            out = d_fair(logit[f_rows], f_cond if n_conditions > 1 else None)
            if n_groups == 2:
                return F.binary_cross_entropy_with_logits(out.squeeze(-1), zt[f_rows].float(), reduction="none")
            return F.cross_entropy(out, zt[f_rows], reduction="none")

        r_weight = torch.ones(len(X), device=device)
        fake_target = torch.zeros(len(X), device=device)
        real_target = torch.ones(len(cast(torch.Tensor, val_input)), device=device) if robust else None
        last_bce, last_dr = float("nan"), float("nan")
        last_r = 0.0
        history = []
        for epoch in epoch_range(int(self.epochs), self, "FR-Train"):
            warm = epoch < self.warmup
            logit = classifier(Xt).squeeze(-1)
            y_hat = code_prediction(logit, self.robust_input, self.label_coding)
            fake_input = robust_input(Xt, zt, y_hat, n_groups) if robust else None

            # Fairness discriminator (frozen during warm-up, Appendix A.4).
            if self.lambda_f > 0 and not warm:
                opt_f.zero_grad()
                d_f_loss = fair_cost(logit.detach()).mean()
                d_f_loss.backward()
                opt_f.step()
            # Robustness discriminator: clean validation = 1, training with predictions = 0.
            if robust:
                assert real_target is not None and fake_input is not None  # both built when robust
                opt_r.zero_grad()
                d_r_loss = 0.5 * (
                    F.binary_cross_entropy_with_logits(d_robust(val_input), real_target)
                    + F.binary_cross_entropy_with_logits(d_robust(fake_input.detach()), fake_target)
                )
                d_r_loss.backward()
                opt_r.step()
                last_dr = float(d_r_loss.detach())

            if not (warm or epoch % self.d_steps == 0):
                continue
            opt_c.zero_grad()
            weights = wt_user * r_weight
            bce = F.binary_cross_entropy_with_logits(logit, yt.float(), reduction="none")
            if warm:
                loss = (weights * bce).mean()
            else:
                r_logit = d_robust(fake_input) if robust else None  # ŷ attached: gradient reaches the classifier
                if (robust and self.reweight and (epoch - self.warmup) % self.reweight_every < self.d_steps
                        and np.isfinite(last_bce)):
                    assert r_logit is not None  # computed when robust
                    r_scores = torch.sigmoid(r_logit.detach())
                    r_weight = example_weights(r_scores, last_bce, last_dr, self.C)
                    last_r = float(1.0 / (1.0 + np.exp(-(last_bce / max(last_dr, 1e-12) - self.C))))
                    weights = wt_user * r_weight
                loss = (1.0 - self.lambda_f - self.lambda_r) * (weights * bce).mean()
                # signs: the classifier minimises L1 + λf·L2 + λr·L3 with L2 = −BCE(D_f), L3 = −BCE(D_r(fake), 0)
                if self.lambda_f > 0:
                    loss = loss - self.lambda_f * (weights[f_rows] * fair_cost(logit)).mean()
                if robust:
                    assert r_logit is not None  # computed when robust
                    # = robustness_term
                    loss = loss - self.lambda_r * F.binary_cross_entropy_with_logits(r_logit, fake_target)
            loss.backward()
            opt_c.step()
            last_bce = float((weights * bce).mean().detach())
            if self.reweight_loss == "generator":
                last_bce = float(loss.detach())  # the authors' L_c: last total classifier loss
            if epoch % 500 == 0:
                history.append({"epoch": epoch, "classifier_bce": last_bce, "robust_loss": last_dr,
                                "loss": float(loss.detach())})
                logger.debug("epoch %d: %s", epoch, history[-1])

        info = {
            "reweight_R": last_r,
            "history": history,
            "groups": [str(c) for c in categories],
        }
        scores = None
        if robust:
            with torch.no_grad():
                y_hat = code_prediction(classifier(Xt).squeeze(-1), self.robust_input, self.label_coding)
                y_code = code_labels(yt, self.label_coding)
                scores = torch.sigmoid(d_robust(robust_input(Xt, zt, y_code, n_groups))).cpu().numpy()
                info["prediction_scores"] = torch.sigmoid(d_robust(robust_input(Xt, zt, y_hat, n_groups))).cpu().numpy()
        details = FitDetails(example_weights=(wt_user * r_weight).cpu().numpy(), robustness_scores=scores,
                             label_trust=scores)
        self.discriminators_ = {"fair": d_fair, "robust": d_robust}
        return FittedModel(classifier, architecture=architecture, details=details, info=info)
