"""IRW: intrinsic reweighting for α-sized worst-case fairness, and the CVaR-DRO baseline.

Li, Yao, Pan, Wang, Tsang & Fu, "Alpha and Prejudice: Improving α-sized
Worst-case Fairness via Intrinsic Reweighting" (arXiv 2411.03068). Group labels
are never used for training: only ``alpha``, a lower bound on the smallest
group's share of the data, is known. ``as_arrays(data)`` returns the group and
every trainer here discards it (``X, y, _ = as_arrays(data)``).

Weights (``design/IRW.md``). For example ``i`` with per-example gradient
``g_i = ∇θ ℓ_i`` and ``G_W = Σ_{j∈W} g_j``, where ``W`` holds the ``⌈α·m⌉``
examples with the largest current loss, ``w_i ∝ max(0, ⟨g_i, G_W⟩)``: an
example counts as much as one step on it would lower the worst-off
examples' loss. The weighted loss is ``mean_i(w_i · ℓ_i)`` with ``w`` a
constant (no gradient flows through it).

Choices marked *(reconstructed)* in the design note, made here:

* **Normalisation.** Weights sum to the number of examples they are computed
  over (the batch size ``m`` for ``scheme="local"``, ``n`` for
  ``scheme="global"``), so uniform weights are all 1 and the weighted loss has
  the scale of ERM's mean loss — the learning rate means the same thing.
* **All weights zero** (every ``⟨g_i, G_W⟩ ≤ 0``, e.g. a zero ``G_W``): fall
  back to uniform weights over the examples that were not removed as outliers;
  logged at DEBUG level.
* **Gradients.** ``gradients="last"`` (default) uses the last linear layer's
  weight and bias only — cheap, and the paper's suggestion for larger
  networks; ``"all"`` uses every parameter. Per-example gradients come from
  ``torch.func.vmap(torch.func.grad(...))`` over ``functional_call``.
* **Schemes.** ``"local"``: ``W`` is the top ``⌈α·m⌉`` of each mini-batch and
  weights are recomputed per batch. ``"global"``: at the start of every epoch
  ``W`` is the top ``⌈α·n⌉`` of the training set, weights are computed once
  (in chunks, ``G_W`` by one ordinary backward pass) and kept for the epoch.
  That is the paper's scheme and the default, but it collapses on Adult and
  COMPAS (``benchmarks/results/irw.md``): with one logit and last-layer
  gradients, ``g_i = r_i·[h_i, 1]`` (``r_i = σ(z_i) − y_i``, ``h_i ≥ 0``
  after ReLU), so once the global ``W`` is a single class the positive
  weights cover exactly that whole class, for every α; a whole epoch on one
  class flips the model to predicting it everywhere, and the next epoch flips
  back. Options (not in the paper): ``refresh_every=k`` recomputes the global
  weights every ``k`` mini-batches (``k=10`` reaches IRW-local / ERM
  accuracy there); ``uniform_mix=λ`` uses ``(1−λ)·w + λ·1`` (both schemes).
  With IRWO, each refresh reruns the per-batch DBSCAN over the whole epoch.
* **Sample weights.** A given ``sample_weight`` ``s_i`` multiplies the loss:
  ``ℓ_i = s_i · CE_i`` everywhere (ranking, gradients, training loss).
* **Validation.** With ``validation``, the epoch with the lowest validation
  α-CVaR loss (mean of the top ``⌈α·n_val⌉`` losses — group-free, like
  training) is kept.

IRWO (``outliers=True``): in each mini-batch the per-example gradients are
clustered by DBSCAN on their cosine distance (as GRASP does); points labelled
−1 get weight 0 and are left out of ``W`` (``⌈α·m'⌉`` with ``m'`` the kept
count). With ``scheme="global"`` the same per-batch DBSCAN runs over the
epoch's batches before the global weights are computed. ``dbscan_eps=None``
means :data:`DEFAULT_DBSCAN_EPS`, chosen by the study in
``benchmarks/results/irw.md``.

``FittedModel.details.example_weights``: one weight per training example, the
last ones computed (global: the last epoch's; local: for each example, the
weight it got in its batch of the last epoch). ``FittedModel.info``:
``"outliers"`` (IRWO) — sorted indices of the examples removed at least once;
``"alpha"``, ``"scheme"``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

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

__all__ = [
    "CVaRTrainer",
    "DEFAULT_DBSCAN_EPS",
    "IRWOTrainer",
    "IRWTrainer",
    "gradient_outliers",
    "irw_weights",
    "last_layer_gradients",
    "per_sample_gradients",
    "top_k_count",
]

logger = logging.getLogger(__name__)

#: DBSCAN radius in cosine distance (1 − cos) used when ``dbscan_eps=None``.
#: Study (benchmarks/irw_adult_compas.py, last-layer gradients, batches of 32,
#: min_samples 5, one planted label flip per batch): eps 0.05 / 0.1 / 0.2 flag
#: 23% / 13% / 4% of clean points and 88% / 73% / 38% of planted flips on Adult,
#: 48% / 13% / 2% and 58% / 23% / 3% on COMPAS. 0.1 is the middle ground; lower
#: it to catch more corrupted labels at the price of dropping more clean points.
DEFAULT_DBSCAN_EPS = 0.1

_SCHEMES = ("local", "global")
_GRADIENTS = ("last", "all")
_OPTIMIZERS = ("adagrad", "adam", "sgd")
_CHUNK = 4096  # rows per vmap call in the global scheme (bounds memory with gradients="all")


def top_k_count(alpha: float, m: int) -> int:
    """``⌈α·m⌉``, at least 1 (and at most ``m``)."""
    return max(1, min(m, math.ceil(alpha * m - 1e-9)))


def _check_alpha(alpha) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")


def _gradient_params(module: nn.Module, gradients: str) -> list[str]:
    """Names of the parameters whose per-example gradients are used."""
    if gradients == "all":
        return [name for name, _ in module.named_parameters()]
    last = [name for name, m in module.named_modules() if isinstance(m, nn.Linear)][-1]
    return [f"{last}.{p}" if last else p for p, _ in module.get_submodule(last).named_parameters()]


def per_sample_gradients(
    module: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    gradients: Literal["last", "all"] = "last",
    sample_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example gradients (flattened, shape ``(m, p)``) and losses ``(m,)``.

    ``vmap(grad(loss))`` over ``functional_call``; the module's own parameters
    are not changed and no ``.grad`` is written. Detached outputs.
    """
    if gradients not in _GRADIENTS:
        raise ValueError(f"gradients must be one of 'last' or 'all', got {gradients!r}")
    names = _gradient_params(module, gradients)
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = {k: v.detach() for k, v in module.named_buffers()}
    chosen = {k: params[k] for k in names}
    if sample_weight is None:
        sample_weight = torch.ones(len(X), device=X.device)

    def loss_fn(sub, x, target, s):
        out = functional_call(module, ({**params, **sub}, buffers), (x.unsqueeze(0),))
        loss = classification_loss(out, target.unsqueeze(0)).sum() * s
        return loss, loss.detach()

    grads, losses = vmap(grad(loss_fn, has_aux=True), in_dims=(None, 0, 0, 0))(chosen, X, y, sample_weight)
    flat = torch.cat([grads[k].reshape(len(X), -1) for k in names], dim=1)
    return flat.detach(), losses.detach()


def last_layer_gradients(
    module: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    sample_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example gradients of the last linear layer, flattened as :func:`per_sample_gradients`
    flattens them (weight, then bias), and the per-example losses *with* their graph.

    Closed form from one forward and one backward to the logits: for ``z = W h + b``,
    ``∇_W ℓ_i = (∂ℓ_i/∂z_i) h_iᵀ`` and ``∇_b ℓ_i = ∂ℓ_i/∂z_i``. The losses keep their
    graph so the caller can train on the same forward pass.
    """
    last = module.get_submodule([n for n, m in module.named_modules() if isinstance(m, nn.Linear)][-1])
    seen: dict[str, torch.Tensor] = {}
    handle = last.register_forward_hook(lambda _m, inputs, output: seen.update(h=inputs[0], z=output))
    try:
        logits = module(X)
    finally:
        handle.remove()
    losses = classification_loss(logits, y)
    if sample_weight is not None:
        losses = losses * sample_weight
    (dz,) = torch.autograd.grad(losses.sum(), seen["z"], retain_graph=True)
    h = seen["h"].detach()
    parts = {"weight": (dz[:, :, None] * h[:, None, :]).reshape(len(X), -1), "bias": dz}
    grads = torch.cat([parts[name] for name, _ in last.named_parameters()], dim=1)
    return grads.detach(), losses


def gradient_outliers(grads, *, eps: float = DEFAULT_DBSCAN_EPS, min_samples: int = 5) -> np.ndarray:
    """Boolean mask of the rows DBSCAN labels −1 under cosine distance.

    The distance matrix is precomputed (``1 − cos``, clipped to [0, 2]); a zero
    gradient is at distance 1 from everything (its IRW weight is 0 anyway).
    """
    from sklearn.cluster import DBSCAN  # scikit-learn is slow to import; only IRWO needs it

    g = torch.as_tensor(grads).detach().double().cpu()
    unit = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    dist = (1.0 - unit @ unit.T).clamp(0.0, 2.0).numpy()
    np.fill_diagonal(dist, 0.0)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist)
    return labels == -1


def irw_weights(
    grads: torch.Tensor,
    losses: torch.Tensor,
    alpha: float,
    *,
    keep: torch.Tensor | None = None,
    total: float | None = None,
) -> torch.Tensor:
    """IRW weights ``w_i ∝ max(0, ⟨g_i, G_W⟩)``, summing to ``total`` (default ``m``).

    ``W`` = the ``⌈α·m'⌉`` largest losses among the kept rows (``keep``, a
    boolean mask; ``m'`` its count); removed rows get weight 0. If every weight
    is 0, uniform weights over the kept rows are returned.
    """
    m = len(losses)
    total = float(m) if total is None else float(total)
    keep = torch.ones(m, dtype=torch.bool, device=losses.device) if keep is None else keep
    kept = keep.nonzero().squeeze(1)
    if len(kept) == 0:  # everything removed: nothing to weight, fall back to uniform
        return torch.full((m,), total / m, device=losses.device)
    k = top_k_count(alpha, len(kept))
    worst = kept[torch.topk(losses[kept], k).indices]
    G = grads[worst].sum(0)
    return _normalise((grads @ G).clamp_min(0) * keep, keep, total)


def _normalise(raw: torch.Tensor, keep: torch.Tensor, total: float) -> torch.Tensor:
    s = raw.sum()
    if not torch.isfinite(s) or s <= 0:
        logger.debug("all IRW weights are 0; using uniform weights")
        raw = keep.to(raw.dtype)
        s = raw.sum()
    return raw * (total / s)


class _WorstCaseTrainer:
    """Shared training loop; subclasses say how a mini-batch is weighted."""

    name = "_worst_case"
    uses_validation = False  # only to pick the epoch, never as a clean set
    needs_validation = False
    #: Rows per step when ``batch_size`` is None, except on CUDA (:func:`fairal.trainers.device.fit_schedule`).
    default_batch_size = 32

    def __init__(self, alpha: float = 0.1, *, model: Literal["logistic", "mlp"] = "mlp",
                 hidden: Sequence[int] = (64, 32), epochs: int = 20, batch_size: int | None = None,
                 lr: float = 0.01, optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad",
                 progress: bool = False, device: str | torch.device | None = None, random_state: int | None = 0):
        self.alpha = alpha
        self.progress = progress
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state

    # Hooks ---------------------------------------------------------------
    def _check_params(self) -> None:
        _check_alpha(self.alpha)
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of 'adagrad', 'adam' or 'sgd', got {self.optimizer!r}")
        if self.model not in ("logistic", "mlp"):
            raise ValueError(f"model must be one of 'logistic' or 'mlp', got {self.model!r}")
        check_positive_int("epochs", self.epochs)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")

    def _epoch_start(self, module, X, y, s, order) -> None:
        """Called before each epoch with that epoch's example order."""

    def _batch_weights(self, module, X, y, s, batch) -> torch.Tensor:
        raise NotImplementedError

    def _weighted_batch(self, module, X, y, s, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights, per-example losses with their graph)`` for one mini-batch.

        The default asks :meth:`_batch_weights` first, then runs the forward
        pass that is trained on; subclasses that can read the weights off
        that same forward pass override this and save one pass.
        """
        w = self._batch_weights(module, X, y, s, batch).detach()
        return w, classification_loss(module(X[batch]), y[batch]) * s[batch]

    def _info(self) -> dict:
        return {"alpha": self.alpha}

    def _details(self) -> FitDetails:
        return FitDetails(example_weights=self.weights_)

    # Training loop -------------------------------------------------------
    def fit(self, data, *, sample_weight=None, validation=None) -> FittedModel:
        self._check_params()
        X, y, _ = as_arrays(data)  # group labels are never used for training
        n_classes = max(2, int(y.max()) + 1)
        device = torch.device(self.device) if self.device is not None else default_device()
        sw = check_sample_weight(sample_weight, len(X))
        self.batch_size_, self.epochs_ = fit_schedule(len(X), batch_size=self.batch_size,
                                                      default_batch=self.default_batch_size, epochs=self.epochs,
                                                      device=device)
        s = torch.ones(len(X), device=device) if sw is None else torch.as_tensor(sw, device=device)
        architecture = {"kind": self.model, "n_features": X.shape[1], "n_classes": n_classes,
                        "hidden": list(self.hidden) if self.model == "mlp" else []}
        with seeded(self.random_state):
            module = make_model(self.model, X.shape[1], n_classes=n_classes, hidden=self.hidden).to(device)
        Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
        opt_cls = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[self.optimizer]
        optimizer = opt_cls(module.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.random_state or 0)
        self.weights_ = np.ones(len(X), dtype=np.float64)
        self.outliers_: set[int] = set()
        val = None
        if validation is not None:
            Xv, yv, _ = as_arrays(validation)
            val = (torch.as_tensor(Xv, device=device), torch.as_tensor(yv, device=device))
        best = BestEpoch()
        for epoch in epoch_range(self.epochs_, self, type(self).__name__.removesuffix("Trainer")):
            order = torch.randperm(len(X), generator=generator).to(device)
            module.eval()
            self._epoch_start(module, Xt, yt, s, order)
            module.train()
            for start in range(0, len(X), self.batch_size_):
                batch = order[start:start + self.batch_size_]
                w, losses = self._weighted_batch(module, Xt, yt, s, batch)
                loss = (w * losses).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if val is not None:
                module.eval()
                with torch.no_grad():
                    vl = classification_loss(module(val[0]), val[1])
                    cvar = torch.topk(vl, top_k_count(self.alpha, len(vl))).values.mean().item()
                logger.debug("epoch %d validation CVaR loss %.4f", epoch, cvar)
                best.update(module, cvar)
        best.restore(module)
        return FittedModel(module, architecture=architecture, details=self._details(), info=self._info())


class IRWTrainer(_WorstCaseTrainer):
    """Intrinsic reweighting (IRW); ``outliers=True`` gives IRWO. See the module docstring.

    Parameters
    ----------
    alpha : float in (0, 1]
        Lower bound on the smallest group's share; ``W`` is the top ``⌈α·m⌉``.
    scheme : {"local", "global"}
        Weights per mini-batch, or once per epoch over the whole training set.
    gradients : {"last", "all"}
        Per-example gradients of the last linear layer only, or of all layers.
    outliers : bool
        IRWO: remove DBSCAN outliers (cosine distance between per-example
        gradients, per mini-batch) before computing ``W`` and the weights.
    dbscan_eps : float or None
        DBSCAN radius in cosine distance; ``None`` is :data:`DEFAULT_DBSCAN_EPS`.
    dbscan_min_samples : int
        DBSCAN's ``min_samples`` (the point itself included).
    uniform_mix : float in [0, 1]
        Mix the IRW weights with uniform weights: ``(1−λ)·w + λ·u`` (same
        total). 0 (default) is the paper's IRW.
    refresh_every : int or None
        ``scheme="global"`` only: recompute the global weights every this many
        mini-batches as well as at each epoch start. ``None`` (default): once
        per epoch, as in the paper (which collapses on Adult/COMPAS; see the
        module docstring).
    model, hidden, epochs, batch_size, lr, optimizer, device, random_state
        The network and its optimiser (defaults: VFair's MLP [64, 32], Adagrad
        0.01, batch 32, 20 epochs); ``random_state`` seeds initialisation and
        shuffling.
    """

    name = "irw"

    def __init__(self, alpha: float = 0.1, *, scheme: Literal["local", "global"] = "local",
                 gradients: Literal["last", "all"] = "last", model: Literal["logistic", "mlp"] = "mlp",
                 hidden: Sequence[int] = (64, 32), epochs: int = 20, batch_size: int | None = None,
                 lr: float = 0.01, optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad",
                 outliers: bool = False, dbscan_eps: float | None = None, dbscan_min_samples: int = 5,
                 uniform_mix: float = 0.0, refresh_every: int | None = None, progress: bool = False,
                 device: str | torch.device | None = None, random_state: int | None = 0):
        super().__init__(alpha, model=model, hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                         optimizer=optimizer, progress=progress, device=device, random_state=random_state)
        self.scheme = scheme
        self.uniform_mix = uniform_mix
        self.refresh_every = refresh_every
        self.gradients = gradients
        self.outliers = outliers
        self.dbscan_eps = dbscan_eps
        self.dbscan_min_samples = dbscan_min_samples

    def _check_params(self) -> None:
        super()._check_params()
        if self.scheme not in _SCHEMES:
            raise ValueError(f"scheme must be one of 'local' or 'global', got {self.scheme!r}")
        if self.gradients not in _GRADIENTS:
            raise ValueError(f"gradients must be one of 'last' or 'all', got {self.gradients!r}")
        if self.dbscan_eps is not None and not self.dbscan_eps > 0:
            raise ValueError(f"dbscan_eps must be positive or None, got {self.dbscan_eps!r}")
        check_positive_int("dbscan_min_samples", self.dbscan_min_samples)
        if not (isinstance(self.uniform_mix, (int, float)) and 0 <= self.uniform_mix <= 1):
            raise ValueError(f"uniform_mix must be in [0, 1], got {self.uniform_mix!r}")
        if self.refresh_every is not None and (not isinstance(self.refresh_every, int) or self.refresh_every < 1):
            raise ValueError(f"refresh_every must be a positive integer or None, got {self.refresh_every!r}")

    def _mix(self, w: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``(1 − λ)·w + λ·u`` with ``u`` uniform over the kept rows, same total as ``w``."""
        if not self.uniform_mix:
            return w
        keep = torch.ones_like(w, dtype=torch.bool) if keep is None else keep
        u = keep.to(w.dtype) * (w.sum() / keep.sum().clamp_min(1))
        return (1 - self.uniform_mix) * w + self.uniform_mix * u

    def _outlier_mask(self, grads: torch.Tensor) -> torch.Tensor:
        eps = DEFAULT_DBSCAN_EPS if self.dbscan_eps is None else self.dbscan_eps
        mask = gradient_outliers(grads, eps=eps, min_samples=self.dbscan_min_samples)
        return torch.as_tensor(~mask, device=grads.device)

    def _epoch_start(self, module, X, y, s, order) -> None:
        if self.scheme != "global":
            return
        self._order, self._batches_seen = order, 0
        self._global_weights(module, X, y, s, order)

    def _global_weights(self, module, X, y, s, order) -> None:
        n = len(X)
        keep = torch.ones(n, dtype=torch.bool, device=X.device)
        if self.outliers:  # DBSCAN within this epoch's mini-batches
            for start in range(0, n, self.batch_size_):
                batch = order[start:start + self.batch_size_]
                g, _ = per_sample_gradients(module, X[batch], y[batch], gradients=self.gradients,
                                            sample_weight=s[batch])
                keep[batch] = self._outlier_mask(g)
            self.outliers_.update(torch.nonzero(~keep).squeeze(1).tolist())
        with torch.no_grad():
            losses = torch.cat([classification_loss(module(X[i:i + _CHUNK]), y[i:i + _CHUNK])
                                for i in range(0, n, _CHUNK)]) * s
        kept = keep.nonzero().squeeze(1)
        worst = kept[torch.topk(losses[kept], top_k_count(self.alpha, len(kept))).indices]
        # G_W = ∇ Σ_{j∈W} ℓ_j by one ordinary backward pass over the chosen parameters
        names = _gradient_params(module, self.gradients)
        params = dict(module.named_parameters())
        total = (classification_loss(module(X[worst]), y[worst]) * s[worst]).sum()
        G = torch.cat([g.reshape(-1) for g in torch.autograd.grad(total, [params[k] for k in names])])
        raw = torch.empty(n, device=X.device)
        for i in range(0, n, _CHUNK):
            g, _ = per_sample_gradients(module, X[i:i + _CHUNK], y[i:i + _CHUNK], gradients=self.gradients,
                                        sample_weight=s[i:i + _CHUNK])
            raw[i:i + _CHUNK] = (g @ G).clamp_min(0)
        self._global = self._mix(_normalise(raw * keep, keep, float(n)), keep)
        self.weights_ = self._global.cpu().numpy().astype(np.float64)

    def _weighted_batch(self, module, X, y, s, batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scheme != "local" or self.gradients != "last":
            return super()._weighted_batch(module, X, y, s, batch)
        # Local scheme, last-layer gradients: one forward pass serves both the weights and the
        # training step. For the last linear layer z = W h + b, example i's gradient is
        # (∂ℓ_i/∂z_i ⊗ h_i, ∂ℓ_i/∂z_i), and ∂ℓ_i/∂z_i for every i comes from one backward of
        # Σ ℓ_i to z (examples do not interact). Equal to per_sample_gradients (tested).
        g, losses = last_layer_gradients(module, X[batch], y[batch], sample_weight=s[batch])
        return self._local_weights(g, losses.detach(), batch), losses

    def _batch_weights(self, module, X, y, s, batch) -> torch.Tensor:
        if self.scheme == "global":
            if self.refresh_every is not None and self._batches_seen and self._batches_seen % self.refresh_every == 0:
                self._global_weights(module, X, y, s, self._order)
            self._batches_seen += 1
            return self._global[batch]
        g, losses = per_sample_gradients(module, X[batch], y[batch], gradients=self.gradients,
                                         sample_weight=s[batch])
        return self._local_weights(g, losses, batch)

    def _local_weights(self, g, losses, batch) -> torch.Tensor:
        keep = None
        if self.outliers:
            keep = self._outlier_mask(g)
            self.outliers_.update(batch[~keep].tolist())
        w = self._mix(irw_weights(g, losses, self.alpha, keep=keep), keep)
        self.weights_[batch.cpu().numpy()] = w.cpu().numpy()
        return w

    def _info(self) -> dict:
        info: dict[str, object] = {"alpha": self.alpha, "scheme": self.scheme}
        if self.outliers:
            info["outliers"] = np.array(sorted(self.outliers_), dtype=np.int64)
        return info


class IRWOTrainer(IRWTrainer):
    """IRWO: :class:`IRWTrainer` with ``outliers=True`` (DBSCAN removal in gradient space)."""

    name = "irwo"

    def __init__(self, alpha: float = 0.1, **params):
        params.setdefault("outliers", True)
        super().__init__(alpha, **params)


class CVaRTrainer(_WorstCaseTrainer):
    """CVaR-DRO baseline: each mini-batch trains on its ``⌈α·m⌉`` largest losses only.

    Implemented as weights ``m/k`` on the top ``k = ⌈α·m⌉`` losses and 0
    elsewhere, so ``mean(w·ℓ)`` is the mean of the top-``k`` losses (the
    mini-batch estimate of α-CVaR, Hashimoto et al. 2018; Duchi et al. 2020).
    Ties are broken by ``torch.topk``. Same network and optimiser defaults as
    IRW; ``details.example_weights`` holds each example's weight in its last batch.
    """

    name = "cvar"

    def _weighted_batch(self, module, X, y, s, batch) -> tuple[torch.Tensor, torch.Tensor]:
        losses = classification_loss(module(X[batch]), y[batch]) * s[batch]  # one pass: weights and step
        return self._top_k_weights(losses.detach(), batch), losses

    def _batch_weights(self, module, X, y, s, batch) -> torch.Tensor:
        with torch.no_grad():
            losses = classification_loss(module(X[batch]), y[batch]) * s[batch]
        return self._top_k_weights(losses, batch)

    def _top_k_weights(self, losses, batch) -> torch.Tensor:
        k = top_k_count(self.alpha, len(batch))
        w = torch.zeros(len(batch), device=losses.device)
        w[torch.topk(losses, k).indices] = len(batch) / k
        self.weights_[batch.cpu().numpy()] = w.cpu().numpy()
        return w

