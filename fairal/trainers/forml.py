"""FORML: Fairness-Optimized Reweighting via Meta-Learning (Yan, Seto & Apostoloff, 2022).

One learnable logit ``w_i`` per training example (initialised to 0, so the
weights start uniform). For every training batch (Algorithm 1 of the paper):

* (7)  ``δ_c = ∇_θ Σ_i s_i ℓ_i(θ)`` with ``s = softmax(w_batch)``;
* (8)  look-ahead ``θ̃ = θ − η_c δ_c`` (``reverse=False``, the default) or
  ``θ̃ = θ + η_c δ_c`` (``reverse=True``, the paper's choice, see below), kept
  differentiable in ``w``;
* (9–11) the fairness meta-loss ``L_f`` on an exemplar batch evaluated at ``θ̃``,
  differentiated with respect to ``w_batch``; ``w_batch ← w_batch − weight_lr · ∂L_f/∂w_batch``;
* (12–13) the weighted loss recomputed with the *new* ``softmax(w_batch)`` and
  ``θ`` updated by the model optimiser (SGD with momentum 0.9, ``lr``).

The look-ahead is a pure function of a parameter dict
(:func:`torch.func.functional_call` + :func:`torch.func.grad`, second order);
the module's own parameters are never touched by it.

Choices where the paper is silent or loose (documented, not guessed silently):

* **reverse.** Appendix A.2 tries "a reverse sign in the update for the model
  parameters in the first update" (the BDMM argument of Platt & Barr, 1987) and,
  separately, a reverse sign on the sample-weight update. Table 6: reversing the
  *look-ahead* (step 8) is better on Celeb-A (TPRD 22.80 → 20.41); Table 7:
  reversing the *weight* update (step 11) has little effect, so the paper keeps
  the ordinary descent step on ``w``. Here ``reverse=True`` means exactly
  ``θ̃ = θ + η_c δ_c`` in step 8; step 11 is always descent. To first order in
  ``η_c`` this flips the sign of ``∂L_f/∂w`` (``∂L_f/∂w_i ≈ ∓η_c s_i (g_i − ḡ)·∇_θ L_f``
  with ``g_i = ∇_θ ℓ_i``, ``ḡ = Σ_j s_j g_j``): without reverse, examples whose
  gradient step lowers the meta-loss gain weight (Ren et al., 2018); with
  reverse, the weights move the other way (the multiplier-style ascent of BDMM).
  In the paper ``η_f = η_c = lr`` with a softmax over 128–256 examples, so ``w``
  moves by ``O(lr²/n_b)`` per visit, which is consistent with Table 7's "little
  effect". With a ``weight_lr`` large enough to move the weights, reverse
  measurably *up*-weights the corrupted labels on digits (learned-logit gap
  corrupted − clean ≈ +0.5 at ``weight_lr=1``, +10 at 10, accuracy collapsing),
  while the ordinary sign down-weights them; hence the default
  ``reverse=False``. ``benchmarks/forml_digits_adult.py`` measures both.
* **weight_lr** defaults to 1.0, not ``lr``: with ``weight_lr = lr`` the weights
  do not move measurably (see above). Chosen on digits (0.1 … 30 tried, one seed).
* **Step 13** in the paper reuses ``η_f`` for θ, apparently a typo (A.1: "SGD
  with the same learning rate as the model parameter learning rate"); we use
  ``lr`` for θ and ``weight_lr`` for ``w``.
* **Exemplar set.** ``validation`` (Dataset or ``(X, y[, group])``); when None,
  a stratified (by group) 10 % of the training data is held out as exemplars
  and not trained on. Each exemplar batch has ``batch_size`` rows (all of them
  if the set is smaller) and holds at least ``exemplar_min_per_group`` rows of
  every group (fewer only if the group has fewer). Groups are ``group`` from the
  data; without a group (or for a tuple without one) the class is the group,
  FORML's multi-class setting (for ``load_digits`` the two coincide).
* **Meta-losses** on per-group mean cross-entropies ``L_a`` of the exemplar
  batch: ``"max_loss_d"`` = max over pairs ``|L_a − L_b|`` = ``max_a L_a − min_a L_a``;
  ``"mean_loss_d"`` = mean over unordered pairs ``|L_a − L_b|``;
  ``"cross_entropy"`` = plain mean loss (the paper's ablation, Table 8).
* **EMA.** After each epoch's pass, ``ema_i ← ema·ema_i + (1 − ema)·(n_b s_i ℓ_i)``
  with ``n_b`` the batch size, i.e. the weighted loss normalised so that uniform
  weights give the plain loss; the first value initialises it.
  ``info["ema_loss"]`` holds it.
* **Weights.** ``model.details.example_weights`` = ``softmax(w)`` over *all*
  training examples (sums to 1); ``details.label_trust`` = the same × ``n``
  (mean 1); ``info["w"]`` = the raw logits. They refer to the rows used for
  training, ``details.rows`` (all rows but the hold-out when ``validation`` is None).
* **Condensation** (§4.2): "remove 10 % of the training samples with the lowest
  normalized weighted loss, computed using an EMA". With ``condense > 0`` the
  ``condense`` fraction with the *lowest* EMA is dropped and the model is
  retrained from scratch on the rest with *standard* (uniform) training, as in
  the paper's Table 5. ``info["kept_index"]`` lists the rows kept.
* **Early stopping** (``early_stopping=True``; the paper's MNIST setting) keeps
  the epoch with the lowest mean loss on the exemplar set.
* ``sample_weight``, if given, multiplies each example's loss as a fixed prior
  under the learned softmax weights.
* ``weight_lr=0`` never moves ``w``: it is the uniform-weights baseline through
  the identical pipeline (the meta-step is skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from fairal.trainers._base import (
    BestEpoch,
    as_arrays,
    check_positive_int,
    check_sample_weight,
    classification_loss,
    epoch_range,
)
from fairal.trainers.device import default_device, fit_schedule
from fairal.trainers.models import FitDetails, FittedModel, make_model, seeded

__all__ = ["FORMLTrainer", "META_LOSSES", "meta_loss_value", "meta_objective", "meta_gradient"]

logger = logging.getLogger(__name__)

META_LOSSES = ("max_loss_d", "mean_loss_d", "cross_entropy")


def meta_loss_value(losses: torch.Tensor, group: torch.Tensor, n_groups: int, kind: str) -> torch.Tensor:
    """The fairness meta-loss of per-example ``losses`` with integer ``group`` codes in [0, n_groups)."""
    if kind == "cross_entropy":
        return losses.mean()
    sums = torch.zeros(n_groups, dtype=losses.dtype, device=losses.device).index_add(0, group, losses)
    counts = torch.bincount(group, minlength=n_groups)
    present = counts > 0
    means = sums[present] / counts[present].to(losses.dtype)
    if means.numel() < 2:
        return losses.sum() * 0.0
    if kind == "max_loss_d":
        return means.max() - means.min()
    gaps = (means[:, None] - means[None, :]).abs()
    k = means.numel()
    return gaps.sum() / (k * (k - 1))  # every unordered pair counted twice in the k(k-1) off-diagonal cells


def _weighted_loss(module, params, buffers, w_batch, X, y, prior):
    losses = classification_loss(functional_call(module, (params, buffers), (X,)), y)
    if prior is not None:
        losses = losses * prior
    return (torch.softmax(w_batch, dim=0) * losses).sum()


def meta_objective(module, params, buffers, w_batch, train_batch, exemplar_batch, *,
                   meta_loss: str, inner_lr: float, reverse: bool, n_groups: int, prior=None) -> torch.Tensor:
    """Steps 7–9: the meta-loss at the look-ahead θ̃, as a differentiable function of ``w_batch``.

    Pure: ``params`` is a dict of tensors, the module's own parameters are unused.
    """
    X, y = train_batch
    Xv, yv, gv = exemplar_batch
    delta = grad(_weighted_loss, argnums=1)(module, params, buffers, w_batch, X, y, prior)
    sign = 1.0 if reverse else -1.0
    look_ahead = {name: p + sign * inner_lr * delta[name] for name, p in params.items()}
    losses = classification_loss(functional_call(module, (look_ahead, buffers), (Xv,)), yv)
    return meta_loss_value(losses, gv, n_groups, meta_loss)


def meta_gradient(module, params, buffers, w_batch, train_batch, exemplar_batch, **kwargs):
    """Step 10: ``(∂L_f/∂w_batch, L_f)`` through the second-order look-ahead."""
    def objective(w):
        value = meta_objective(module, params, buffers, w, train_batch, exemplar_batch, **kwargs)
        return value, value.detach()

    return grad(objective, has_aux=True)(w_batch)


class FORMLTrainer:
    """Learn per-example weights for a fairness meta-loss on exemplars (FORML, Algorithm 1).

    See the module docstring for every choice made where the paper is silent.
    """

    name = "forml"
    uses_validation = True   # the exemplar set
    needs_validation = False  # holds out its own exemplars without one
    #: Rows per step when ``batch_size`` is None, except on CUDA (:func:`fairal.trainers.device.fit_schedule`).
    #: FORML's default stays an explicit 128 on every device: full batches with ≥ 200 steps moved its
    #: Adult F1 outside the seed spread (benchmarks/results/device_batch.md); batch_size=None opts in.
    default_batch_size = 128

    def __init__(
        self,
        *,
        meta_loss: Literal["max_loss_d", "mean_loss_d", "cross_entropy"] = "max_loss_d",
        model: Literal["logistic", "mlp"] = "mlp",
        hidden: Sequence[int] = (64, 64),
        epochs: int = 20,
        batch_size: int | None = 128,
        lr: float = 0.01,
        weight_lr: float = 1.0,
        inner_lr: float | None = None,
        reverse: bool = False,
        exemplar_min_per_group: int = 3,
        ema: float = 0.9,
        condense: float = 0.0,
        early_stopping: bool = False,
        momentum: float = 0.9,
        progress: bool = False,
        device: str | torch.device | None = None,
        random_state: int | None = 0,
    ):
        self.meta_loss = meta_loss
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_lr = weight_lr
        self.inner_lr = inner_lr
        self.reverse = reverse
        self.exemplar_min_per_group = exemplar_min_per_group
        self.ema = ema
        self.condense = condense
        self.early_stopping = early_stopping
        self.momentum = momentum
        self.progress = progress
        self.device = device
        self.random_state = random_state

    # Validation -----------------------------------------------------------
    def _check_params(self) -> None:
        if self.meta_loss not in META_LOSSES:
            raise ValueError(f"meta_loss must be one of {', '.join(repr(m) for m in META_LOSSES)}, "
                             f"got {self.meta_loss!r}")
        if self.model not in ("logistic", "mlp"):
            raise ValueError(f"model must be one of 'logistic' or 'mlp', got {self.model!r}")
        for name in ("epochs", "exemplar_min_per_group"):
            check_positive_int(name, getattr(self, name))
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        for name in ("lr", "weight_lr", "momentum"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
        if self.inner_lr is not None and (not np.isfinite(self.inner_lr) or self.inner_lr <= 0):
            raise ValueError(f"inner_lr must be positive (or None for lr), got {self.inner_lr!r}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema!r}")
        if not 0 <= self.condense < 1:
            raise ValueError(f"condense must be in [0, 1), got {self.condense!r}")

    # Fitting --------------------------------------------------------------
    def fit(self, data, *, sample_weight=None, validation=None) -> FittedModel:
        self._check_params()
        X, y, group = as_arrays(data)
        prior = None
        if sample_weight is not None:
            prior = check_sample_weight(sample_weight, len(X))
        rng = np.random.default_rng(self.random_state)
        train_index = np.arange(len(X))
        if validation is None:
            key = group if group is not None else y
            train_index, held = _stratified_holdout(key, 0.1, self.exemplar_min_per_group, rng)
            Xv, yv, gv = X[held], y[held], None if group is None else group[held]
            X, y = X[train_index], y[train_index]
            group = None if group is None else group[train_index]
            prior = None if prior is None else prior[train_index]
        else:
            Xv, yv, gv = as_arrays(validation)
            if Xv.shape[1] != X.shape[1]:
                raise ValueError(f"validation must have {X.shape[1]} features like the training data, "
                                 f"got {Xv.shape[1]}")
        if gv is None:
            gv = yv  # the class is the group (FORML's multi-class setting)
        groups, gv_codes = np.unique(np.asarray(gv).astype(str), return_inverse=True)
        n_classes = max(2, int(max(y.max(), yv.max())) + 1)
        device = torch.device(self.device) if self.device is not None else default_device()
        architecture = {"kind": self.model, "n_features": X.shape[1], "n_classes": n_classes,
                        "hidden": list(self.hidden) if self.model == "mlp" else []}
        tensors = dict(
            X=torch.as_tensor(X, device=device), y=torch.as_tensor(y, device=device),
            Xv=torch.as_tensor(Xv, device=device), yv=torch.as_tensor(yv, device=device),
            gv=torch.as_tensor(gv_codes.astype(np.int64), device=device),
            prior=None if prior is None else torch.as_tensor(prior, device=device),
        )
        module, w, ema_loss, history = self._train(tensors, architecture, len(groups), device, learn=True)
        weights = torch.softmax(w.double(), dim=0).cpu().numpy()
        details = FitDetails(example_weights=weights, label_trust=weights * len(weights), rows=train_index)
        info = {
            "w": w.cpu().numpy(),
            "ema_loss": ema_loss.cpu().numpy(),
            "meta_loss_history": history,
            "groups": groups.tolist(),
        }
        if self.condense > 0:
            n_drop = int(round(self.condense * len(X)))
            keep = np.sort(np.argsort(ema_loss.cpu().numpy(), kind="stable")[n_drop:])
            sub = {**tensors, "X": cast(torch.Tensor, tensors["X"])[keep], "y": cast(torch.Tensor, tensors["y"])[keep],
                   "prior": None if prior is None else cast(torch.Tensor, tensors["prior"])[keep]}
            module, _, _, _ = self._train(sub, architecture, len(groups), device, learn=False)
            info["kept_index"] = train_index[keep]
        return FittedModel(module, architecture=architecture, details=details, info=info)

    def _train(self, t, architecture, n_groups, device, *, learn: bool):
        """Algorithm 1 over ``epochs``; ``learn=False`` keeps the weights uniform (standard training)."""
        with seeded(self.random_state):
            module = make_model(self.model, architecture["n_features"], n_classes=architecture["n_classes"],
                                hidden=self.hidden).to(device)
        X, y, prior = t["X"], t["y"], t["prior"]
        n = len(X)
        batch_size, epochs = fit_schedule(n, batch_size=self.batch_size, default_batch=self.default_batch_size,
                                          epochs=self.epochs, device=device)
        self.batch_size_, self.epochs_ = batch_size, epochs
        w = torch.zeros(n, device=device, dtype=X.dtype)
        ema_loss = torch.full((n,), float("nan"), device=device, dtype=X.dtype)
        optimizer = torch.optim.SGD(module.parameters(), lr=self.lr, momentum=self.momentum)
        generator = torch.Generator().manual_seed(self.random_state or 0)
        sampler = _ExemplarSampler(t["gv"].cpu().numpy(), n_groups, batch_size,
                                   self.exemplar_min_per_group, np.random.default_rng(self.random_state))
        meta_on = learn and self.weight_lr > 0
        history: list[float] = []
        best = BestEpoch()
        for epoch in epoch_range(epochs, self, "FORML"):
            module.train()
            order = torch.randperm(n, generator=generator).to(device)
            meta_values = []
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                ex = torch.as_tensor(sampler.sample(), device=device)
                exemplar = (t["Xv"][ex], t["yv"][ex], t["gv"][ex])
                value, losses = self.step(module, optimizer, w, idx, (X[idx], y[idx]), exemplar,
                                          n_groups=n_groups, prior=None if prior is None else prior[idx],
                                          meta=meta_on)
                if value is not None:
                    meta_values.append(value)
                with torch.no_grad():
                    weighted = len(idx) * torch.softmax(w[idx], dim=0) * losses
                    old = ema_loss[idx]
                    ema_loss[idx] = torch.where(torch.isnan(old), weighted, self.ema * old + (1 - self.ema) * weighted)
            if meta_values:
                history.append(float(np.mean(meta_values)))
            if self.early_stopping:
                module.eval()
                with torch.no_grad():
                    val_loss = classification_loss(module(t["Xv"]), t["yv"]).mean().item()
                logger.debug("epoch %d exemplar loss %.4f", epoch, val_loss)
                best.update(module, val_loss)
        best.restore(module)
        return module, w, ema_loss, history

    def step(self, module, optimizer, w, idx, train_batch, exemplar_batch, *, n_groups, prior=None, meta=True):
        """One batch of Algorithm 1: update ``w[idx]`` in place (7–11), then θ (12–13).

        Returns ``(meta-loss at θ̃ or None, per-example losses at θ before the update)``.

        Same mathematics as :func:`meta_gradient` (tests check it against that
        reference), computed without second-order autograd. Our models are
        linear layers and element-wise activations, so for a linear layer
        ``z = W a + b`` example ``i``'s gradient is ``δ_i a_iᵀ`` (and ``δ_i``),
        with ``δ_i = ∂ℓ_i/∂z_i`` read off ONE backward pass of ``Σ ℓ_i`` to the
        layer outputs (examples do not interact). From the cached ``a`` and ``δ``:

        * the look-ahead step ``Σ_i s_i ∇ℓ_i`` is ``(s·δ)ᵀ a`` per layer;
        * the meta-gradient needs ``∂L_f/∂s_i = ∓η ⟨∇ℓ_i(θ), g̃⟩`` with
          ``g̃ = ∇L_f(θ̃)`` (one backward at θ̃ on the exemplar batch), and
          ``⟨δ_i a_iᵀ, G⟩ = δ_iᵀ G a_i`` is a matrix product per layer;
        * the model update with the new weights ``s'`` is ``(s'·δ)ᵀ a`` again.

        So a step costs one forward and one backward on the batch plus one of
        each on the exemplar batch, instead of nested autograd through a
        second-order graph.
        """
        X, y = train_batch
        layers, names, chain = self._layout(module)
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(layer) -> (input a, output z)
        hooks = [layer.register_forward_hook(lambda m, inputs, out: cache.__setitem__(id(m), (inputs[0], out)))
                 for layer in layers]
        try:
            losses = classification_loss(module(X), y)
        finally:
            for hook in hooks:
                hook.remove()
        if prior is not None:
            losses = losses * prior
        inputs = [cache[id(layer)][0].detach() for layer in layers]
        deltas = torch.autograd.grad(losses.sum(), [cache[id(layer)][1] for layer in layers])
        value = None
        if meta:
            value = self._meta_step(module, layers, names, chain, inputs, deltas, w, idx, exemplar_batch,
                                    n_groups)
        s = torch.softmax(w[idx].detach(), dim=0)
        optimizer.zero_grad()
        for layer, grad_w, grad_b in zip(layers, *_weighted_layer_gradients(inputs, deltas, s)):
            layer.weight.grad = grad_w
            if layer.bias is not None:
                layer.bias.grad = grad_b
        optimizer.step()
        return value, losses.detach()

    def _layout(self, module):
        """The module's linear layers in call order and a parameter-id → name map (cached per module)."""
        if getattr(self, "_layout_of", None) is not module:
            self._layout_of = module
            leaves = [m for m in module.modules() if not list(m.children())]
            chain = type(module).__name__ in ("LogisticRegression", "MLP") and all(
                isinstance(m, (torch.nn.Linear, torch.nn.ReLU)) for m in leaves)
            self._layout_cache = ([m for m in module.modules() if isinstance(m, torch.nn.Linear)],
                                  {id(p): name for name, p in module.named_parameters()},
                                  leaves if chain else None)
        return self._layout_cache

    def _meta_step(self, module, layers, names, chain, inputs, deltas, w, idx, exemplar_batch, n_groups) -> float:
        """Steps 7–11 from the cached layer inputs and output gradients; returns L_f at θ̃."""
        inner_lr = self.lr if self.inner_lr is None else self.inner_lr
        sign = 1.0 if self.reverse else -1.0
        s = torch.softmax(w[idx].detach(), dim=0)
        look_ahead = {}
        for layer, grad_w, grad_b in zip(layers, *_weighted_layer_gradients(inputs, deltas, s)):
            look_ahead[names[id(layer.weight)]] = layer.weight.detach() + sign * inner_lr * grad_w
            if layer.bias is not None:
                look_ahead[names[id(layer.bias)]] = layer.bias.detach() + sign * inner_lr * grad_b
        for p in look_ahead.values():
            p.requires_grad_(True)
        Xv, yv, gv = exemplar_batch
        logits = _chain_forward(module, chain, look_ahead, names, Xv)
        meta_value = meta_loss_value(classification_loss(logits, yv), gv, n_groups, self.meta_loss)
        if not meta_value.requires_grad:  # one group in the exemplar batch: L_f is a constant 0
            return float(meta_value)
        g_tilde = dict(zip(look_ahead, torch.autograd.grad(meta_value, list(look_ahead.values()))))
        inner_products = torch.zeros_like(s)  # ⟨∇ℓ_i(θ), g̃⟩ for every example i
        for layer, a, delta in zip(layers, inputs, deltas):
            inner_products += ((delta @ g_tilde[names[id(layer.weight)]]) * a).sum(1)
            if layer.bias is not None:
                inner_products += delta @ g_tilde[names[id(layer.bias)]]
        ds = sign * inner_lr * inner_products  # ∂L_f/∂s
        with torch.no_grad():
            w[idx] -= self.weight_lr * s * (ds - (s * ds).sum())  # softmax's Jacobianᵀ · ∂L_f/∂s
        return float(meta_value.detach())


def _chain_forward(module, chain, params: dict, names: dict, X: torch.Tensor) -> torch.Tensor:
    """``module`` evaluated at ``params`` (name → tensor), differentiably.

    fairal's LogisticRegression and MLP are chains of leaf modules (``chain``:
    linear layers and ReLUs in call order), run here with ``F.linear`` on the
    given tensors; without a chain it goes through ``functional_call``, whose
    parameter swapping costs more per call than these tiny networks do.
    """
    if chain is None:
        return functional_call(module, (params, dict(module.named_buffers())), (X,))
    h = X
    for leaf in chain:
        if isinstance(leaf, torch.nn.Linear):
            bias = None if leaf.bias is None else params[names[id(leaf.bias)]]
            h = F.linear(h, params[names[id(leaf.weight)]], bias)
        else:
            h = leaf(h)
    return h


def _weighted_layer_gradients(inputs, deltas, s):
    """Per linear layer, ``∇_W Σ_i s_i ℓ_i = (s·δ)ᵀ a`` and ``∇_b = Σ_i s_i δ_i``."""
    scaled = [s[:, None] * delta for delta in deltas]
    return [d.T @ a for d, a in zip(scaled, inputs)], [d.sum(0) for d in scaled]


def _stratified_holdout(key, fraction, min_per_group, rng):
    """``(train_index, held_index)``: ``fraction`` of each group held out, at least ``min_per_group``
    where the group has more than that many rows (one row always stays for training)."""
    key = np.asarray(key).astype(str)
    held = []
    for value in np.unique(key):
        rows = np.flatnonzero(key == value)
        k = max(int(round(fraction * len(rows))), min(min_per_group, len(rows) - 1))
        held.append(rng.permutation(rows)[:k])
    held_index = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(key)), held_index), held_index


class _ExemplarSampler:
    """Exemplar batches of ``size`` rows with at least ``min_per_group`` of each group ("sample_fair")."""

    def __init__(self, codes, n_groups, size, min_per_group, rng):
        self.codes, self.size, self.rng = codes, size, rng
        self.by_group = [np.flatnonzero(codes == g) for g in range(n_groups)]
        self.min_per_group = min_per_group

    def sample(self) -> np.ndarray:
        n = len(self.codes)
        if n <= self.size:
            return np.arange(n)
        picked = [self.rng.choice(rows, size=min(self.min_per_group, len(rows)), replace=False)
                  for rows in self.by_group if len(rows)]
        chosen = np.concatenate(picked)
        free = np.ones(n, dtype=bool)
        free[chosen] = False
        rest = np.flatnonzero(free)
        extra = max(0, self.size - len(chosen))
        return np.concatenate([chosen, self.rng.choice(rest, size=min(extra, len(rest)), replace=False)])
