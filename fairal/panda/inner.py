"""The unrolled inner learner: ACTIVELEARNSIM's classifier training as a pure function.

``train_head(params, features, labels, weights, steps=..., lr=...)`` runs
``steps`` full-batch gradient steps on the weighted binary cross-entropy

    L(θ; w) = Σ_i w_i ℓ_i(θ) / max(Σ_i w_i, eps) + ½·l2·Σ ||W||²

and returns the new parameter dict. Nothing is modified in place, and the
result stays differentiable with respect to ``weights`` (the relaxed
selection) and the initial ``params`` — the outer (meta) gradient of a
validation loss flows back through every step (torch.func style: gradients
with :func:`torch.func.grad`, parameters in a dict).

The model is a linear head by default: ``params = {"weight": (1, k),
"bias": (1,)}`` and ``logits = features @ weight.T + bias`` (:func:`init_head`
builds zeros of that shape). Any other module works through
:func:`torch.func.functional_call`: pass ``module=`` and the module's own
parameter dict, e.g. for an ``nn.Linear(k, 1)``::

    linear = nn.Linear(k, 1)
    params = dict(linear.named_parameters())      # {"weight": (1, k), "bias": (1,)}
    trained = train_head(params, X, y, w, steps=30, lr=0.5, module=linear)
    logits = torch.func.functional_call(linear, trained, (X_val,)).squeeze(-1)

(for an ``nn.Linear`` the result equals ``module=None``, which is the same
computation without the module). ``l2`` penalises every parameter whose name
ends in ``"weight"`` (biases are not penalised). The module's own parameters
are never changed.

``first_order`` (what gradient remains — tested in ``tests/test_panda_blocks.py``):

* ``False`` (default): exact gradient of the unrolled ``steps`` (second order:
  each step's Jacobian ``I − lr·∂²L/∂θ²`` is kept).
* ``True``: every Hessian ``∂²L/∂θ²`` is dropped, i.e. ``∂θ_{k+1}/∂θ_k`` is
  treated as the identity. Each step's gradient is evaluated at a detached
  ``θ_k`` but stays attached to ``weights``. So ``d θ_K / d θ_0 = I`` (exactly
  first-order MAML) and ``d θ_K / d w = −lr Σ_k ∂g_k/∂w`` with
  ``g_k = ∇_θ L(θ_k; w)`` (the sum of one-step look-ahead terms of Ren et al.
  2018). The gradient to the selection weights is therefore **not** zero —
  plain ``create_graph=False`` would give exactly zero to ``weights``, which
  would make meta-training a no-op. Forward values are identical in both modes.

``optimizer="adam"`` unrolls Adam (torch.optim.Adam's update, bias-corrected,
no weight decay — use ``l2``) instead of plain gradient descent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

__all__ = ["init_head", "head_logits", "head_loss", "train_head", "train_linear_heads", "fit_logistic"]

Optimizer = Literal["sgd", "adam"]


def init_head(
    n_features: int, *, dtype: torch.dtype = torch.float32, device=None
) -> dict[str, torch.Tensor]:
    """Zero parameters of a linear head: ``{"weight": (1, k), "bias": (1,)}``."""
    return {
        "weight": torch.zeros(1, n_features, dtype=dtype, device=device),
        "bias": torch.zeros(1, dtype=dtype, device=device),
    }


def head_logits(
    params: Mapping[str, torch.Tensor], features: torch.Tensor, *, module: nn.Module | None = None
) -> torch.Tensor:
    """Logits ``(N,)``: ``features @ weight.T + bias``, or ``module`` called with ``params``."""
    if module is not None:
        out = functional_call(module, dict(params), (features,))
        return out.squeeze(-1)
    return (features @ params["weight"].T + params["bias"]).squeeze(-1)


def head_loss(
    params: Mapping[str, torch.Tensor],
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    l2: float = 0.0,
    module: nn.Module | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """``Σ w_i·BCE_i / max(Σ w_i, eps) + ½·l2·Σ||W||²`` (uniform weights when None)."""
    logits = head_logits(params, features, module=module)
    losses = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    if weights is None:
        loss = losses.mean()
    else:
        w = weights.to(logits.dtype)
        loss = (w * losses).sum() / w.sum().clamp_min(eps)
    if l2:
        penalty = sum((p**2).sum() for name, p in params.items() if name.endswith("weight"))
        loss = loss + 0.5 * l2 * penalty
    return loss


def _check_inputs(params, features, labels, weights, steps, lr, optimizer) -> None:
    if not isinstance(params, Mapping) or not params:
        raise TypeError("params must be a non-empty dict of tensors (name -> tensor)")
    if features.ndim != 2:
        raise ValueError(f"features must have shape (N, k), got {tuple(features.shape)}")
    n = features.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    if weights is not None and weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be one of 'sgd' or 'adam', got {optimizer!r}")


def train_linear_heads(
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    steps: int,
    lr: float,
    l2: float = 0.0,
    eps: float = 1e-12,
    initial: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """M linear heads at once: ``steps`` gradient steps from zero on M tasks, batched.

    ``features (M, N, k)``, ``labels (M, N)``, ``weights (M, N)`` or None. Returns
    ``(weight (M, k), bias (M,))``. Each task's steps are those of :func:`train_head` on its
    own rows (closed form ∇W = Xᵀr + l2·W, ∇b = Σr with r = w ⊙ (σ(z) − y) / Σw); the result
    stays differentiable with respect to ``weights`` (and ``initial``, the starting
    ``(weight (M, k), bias (M,))``, zeros when None).
    """
    y = labels.to(features.dtype)
    if weights is None:
        scaled = torch.full_like(y, 1.0 / y.shape[-1])
    else:
        w = weights.to(features.dtype)
        scaled = w / w.sum(dim=-1, keepdim=True).clamp_min(eps)
    if initial is None:
        weight, bias = features.new_zeros(features.shape[0], features.shape[-1]), features.new_zeros(features.shape[0])
    else:
        weight, bias = initial
    for _ in range(steps):
        residual = (torch.sigmoid(torch.einsum("mnk,mk->mn", features, weight) + bias[:, None]) - y) * scaled
        weight = weight - lr * torch.einsum("mn,mnk->mk", residual, features) - lr * l2 * weight
        bias = bias - lr * residual.sum(dim=-1)
    return weight, bias


def _train_linear_head(params, features, labels, weights, *, steps, lr, l2, eps):
    """:func:`train_linear_heads` for one task from ``params`` (about 50× faster per step than
    ``torch.func.grad`` on CPU, and still differentiable)."""
    weight, bias = train_linear_heads(features[None], labels[None], None if weights is None else weights[None],
                                      steps=steps, lr=lr, l2=l2, eps=eps,
                                      initial=(params["weight"].reshape(1, -1), params["bias"].reshape(1)))
    return {"weight": weight.reshape(params["weight"].shape), "bias": bias.reshape(params["bias"].shape)}


def _logistic_gradient(design, y, w, theta, penalty):
    """Gradient (M, k+1) of Σ w_i ℓ_i(θ) + ½ Σ_j penalty_j θ_j², and the curvature w·p(1 − p) (M, N)."""
    p = torch.sigmoid(torch.bmm(design, theta.unsqueeze(-1)).squeeze(-1))
    gradient = torch.bmm((w * (p - y)).unsqueeze(1), design).squeeze(1) + penalty * theta
    return gradient, w * p * (1 - p)


def _logistic_hessian(design, curvature, penalty):
    """Hessian (M, k+1, k+1): Xᵀ diag(curvature) X + diag(penalty), a tiny ridge keeping it invertible."""
    return torch.bmm((design * curvature.unsqueeze(-1)).mT, design) + torch.diag(penalty + 1e-10)


def fit_logistic(
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    C: float = 1.0,
    max_steps: int = 50,
    tol: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor]:
    """M L2-regularised logistic regressions solved to convergence, with implicit gradients.

    Minimises ``Σ_i w_i ℓ_i(θ) + ‖W‖² / (2C)`` per task (bias not penalised), the objective of
    :class:`fairal.trainers.erm.ERMTrainer` with ``model="logistic"`` and of scikit-learn's
    ``LogisticRegression(C=C)`` (up to a constant factor), by Newton's method in float64 with no
    graph. ``features (M, N, k)``, ``labels (M, N)``, ``weights (M, N)`` or None; returns
    ``(weight (M, k), bias (M,))`` in the features' dtype.

    Gradient. At the optimum θ*(w) the gradient g(θ*, w) is 0, so by the implicit function
    theorem dθ*/dw = −H⁻¹ ∂g/∂w. One Newton step with the graph attached to ``w`` only,
    θ = θ* − H⁻¹ g(θ*, w) with H detached, has the value θ* (g ≈ 0) and exactly that
    derivative: the outer gradient of anything computed from θ is the implicit one, at the cost
    of one solve instead of backpropagating through the iterations.
    """
    dtype = features.dtype
    design = torch.cat([features.double(), features.new_ones(*features.shape[:-1], 1, dtype=torch.float64)], -1)
    y = labels.double()
    w = torch.ones_like(y) if weights is None else weights.double()
    k = features.shape[-1]
    penalty = torch.cat([torch.full((k,), 1.0 / C, dtype=torch.float64, device=design.device),
                         torch.zeros(1, dtype=torch.float64, device=design.device)])
    with torch.no_grad():
        theta = design.new_zeros(design.shape[0], k + 1)
        w_fixed = w.detach()
        for _ in range(max_steps):
            gradient, curvature = _logistic_gradient(design, y, w_fixed, theta, penalty)
            hessian = _logistic_hessian(design, curvature, penalty)
            step = torch.linalg.solve(hessian, gradient.unsqueeze(-1)).squeeze(-1)
            theta = theta - step
            if float(step.abs().max()) < tol:
                break
        hessian = _logistic_hessian(design, _logistic_gradient(design, y, w_fixed, theta, penalty)[1], penalty)
    gradient, _ = _logistic_gradient(design, y, w, theta, penalty)
    theta = theta - torch.linalg.solve(hessian, gradient.unsqueeze(-1)).squeeze(-1)
    return theta[:, :k].to(dtype), theta[:, k].to(dtype)


def train_head(
    params: Mapping[str, torch.Tensor],
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    steps: int,
    lr: float,
    l2: float = 0.0,
    first_order: bool = False,
    optimizer: Optimizer = "sgd",
    module: nn.Module | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    eps: float = 1e-12,
) -> dict[str, torch.Tensor]:
    """Run ``steps`` full-batch steps of ``optimizer`` on :func:`head_loss`; return new params.

    ``sgd``: ``θ ← θ − lr·∇θ L``. ``adam``: torch.optim.Adam's update with
    ``betas`` and ``adam_eps``. See the module docstring for ``first_order``
    and for using an ``nn.Module`` through ``module=``.
    """
    _check_inputs(params, features, labels, weights, steps, lr, optimizer)
    if module is None and optimizer == "sgd" and not first_order and set(params) == {"weight", "bias"}:
        return _train_linear_head(params, features, labels, weights, steps=steps, lr=lr, l2=l2, eps=eps)
    loss_grad = grad(head_loss)
    theta = dict(params)
    kwargs: dict[str, Any] = {"l2": l2, "module": module, "eps": eps}
    if optimizer == "adam":
        m = {k: torch.zeros_like(v) for k, v in theta.items()}
        v2 = {k: torch.zeros_like(v) for k, v in theta.items()}
        beta1, beta2 = betas
    for step in range(1, steps + 1):
        point = {k: v.detach() for k, v in theta.items()} if first_order else theta
        g = loss_grad(point, features, labels, weights, **kwargs)
        if optimizer == "sgd":
            theta = {k: theta[k] - lr * g[k] for k in theta}
            continue
        # Unrolled Adam. sqrt is taken of v̂ clamped away from 0: a coordinate
        # whose gradient is always exactly 0 (a constant-zero feature) would
        # otherwise give 0·inf = nan in the backward pass.
        m = {k: beta1 * m[k] + (1 - beta1) * g[k] for k in theta}
        v2 = {k: beta2 * v2[k] + (1 - beta2) * g[k] * g[k] for k in theta}
        c1, c2 = 1 - beta1**step, 1 - beta2**step
        theta = {
            k: theta[k]
            - lr * (m[k] / c1) / ((v2[k] / c2).clamp_min(1e-30).sqrt() + adam_eps)
            for k in theta
        }
    return theta
