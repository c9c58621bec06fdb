"""Gumbel-top-B sampling, hard and relaxed (PANDA's selection step).

PANDA's policy is agnostic to the current classifier, so all B picks come
from one Gumbel-top-B draw (Kool et al. 2019): perturb the logits ``s`` with
i.i.d. Gumbel(0, 1) noise ``g`` and take the B largest ``z = s + g``; that is
an exact sample of B items without replacement from ``softmax(s)``.

Relaxation (sigmoid threshold). With temperature ``τ`` the relaxed B-hot
vector is ``a_i = σ((z_i − t)/τ)``, where the threshold ``t`` solves
``Σ_i a_i = B``. Every ``a_i`` lies in [0, 1], the sum is exactly B, and as
``τ → 0`` ``a`` tends to the hard top-B indicator of ``z`` (the same noise
gives the same hard sample). The iterative-softmax relaxation (Xie & Ermon
2019) was tried in a prototype and gave single items weights up to 5 at
B = 400 over 11k items; this one cannot.

``t`` is found by bisection in float64 without gradient, then gradients are
attached by the implicit function theorem. Write ``x_i = (z_i − t)/τ``,
``σ'_i = σ(x_i)(1 − σ(x_i))`` and differentiate ``Σ_i σ(x_i) = B``::

    Σ_i σ'_i (δ_ij − ∂t/∂z_j) / τ = 0            ⇒  ∂t/∂z_j = σ'_j / Σ_i σ'_i
    Σ_i σ'_i (−∂t/∂τ − x_i) / τ  = 0             ⇒  ∂t/∂τ  = −Σ_i σ'_i x_i / Σ_i σ'_i

so with ``c = σ' / Σσ'`` (computed stably as ``softmax(log σ')``)::

    ∂a_i/∂z_j = σ'_i (δ_ij − c_j) / τ,     ∂a_i/∂τ = σ'_i (Σ_k c_k x_k − x_i) / τ.

Implementation: ``t = t₀ + Σ_j c_j (z_j − z_j.detach()) + (∂t/∂τ)(τ − τ.detach())``
with ``c`` and ``∂t/∂τ`` detached. Its value is exactly ``t₀`` and its first
derivatives are the ones above, so ``a = σ((z − t)/τ)`` has exact first
derivatives through plain autograd (works with ``torch.func`` too). Second
derivatives *through the relaxation* are not exact (``c`` is treated as a
constant); meta-training only needs first derivatives here — the
second-order terms of the inner learner are unaffected.

Consequence worth knowing: the relaxation (like the hard sample) is invariant
to adding a constant to every logit, so ``Σ_j ∂L/∂s_j = 0`` — a parameter that
shifts all logits equally gets exactly zero gradient (the policy has no
output bias for that reason).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "sample_gumbel",
    "gumbel_top_b",
    "relaxed_top_b",
    "straight_through_top_b",
]


def _check_budget(n: int, b: int) -> None:
    if isinstance(b, bool) or not isinstance(b, int):
        raise TypeError(f"b must be an int, got {type(b).__name__}")
    if b < 1 or b > n:
        raise ValueError(
            f"b must be between 1 and the number of items N={n}, got b={b} for N={n}"
        )


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim == 0:
        raise ValueError("logits must have at least one dimension (items last), got a scalar")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")


def sample_gumbel(
    shape, *, generator: torch.Generator | None = None, dtype=torch.float32, device=None
) -> torch.Tensor:
    """I.i.d. standard Gumbel noise ``−log E`` with ``E ~ Exp(1)``, drawn from ``generator``.

    Deterministic given a seeded ``torch.Generator`` (the noise is drawn on
    the generator's device and moved to ``device``); the global RNG is used
    when ``generator`` is None.
    """
    device = torch.device(device) if device is not None else None
    # Draw on the generator's device (a CPU generator can feed CUDA logits), then move.
    where = generator.device if generator is not None else device
    e = torch.empty(shape, dtype=torch.float64, device=where).exponential_(generator=generator)
    # E > 0 in torch, but guard the log anyway: E = 0 would give g = +inf.
    g = -torch.log(e.clamp_min(torch.finfo(torch.float64).tiny))
    return g.to(dtype=dtype, device=device if device is not None else g.device)


def _noise(logits, gumbel, generator) -> torch.Tensor:
    if gumbel is None:
        return sample_gumbel(
            logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
        )
    gumbel = torch.as_tensor(gumbel, dtype=logits.dtype, device=logits.device)
    if gumbel.shape != logits.shape:
        raise ValueError(
            f"gumbel must have the shape of logits {tuple(logits.shape)}, got {tuple(gumbel.shape)}"
        )
    return gumbel


def gumbel_top_b(
    logits: torch.Tensor,
    b: int,
    *,
    generator: torch.Generator | None = None,
    gumbel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample ``b`` distinct items without replacement from ``softmax(logits)``.

    Gumbel-top-k (Kool et al. 2019): the ``b`` largest ``logits + g``, with
    ``g`` standard Gumbel noise drawn from ``generator`` (or given as
    ``gumbel``, e.g. to share the noise with :func:`relaxed_top_b`). Returns a
    LongTensor of shape ``(..., b)`` (items along the last dimension), in the
    order a sequential sampler would draw them (largest perturbed logit first).
    Items with logit ``-inf`` are never drawn while others remain.
    """
    _check_logits(logits)
    n = logits.shape[-1]
    _check_budget(n, b)
    with torch.no_grad():
        z = logits.detach() + _noise(logits.detach(), gumbel, generator)
        return torch.topk(z, b, dim=-1, largest=True, sorted=True).indices


def _threshold(z: torch.Tensor, tau: torch.Tensor, b: int, iterations: int) -> torch.Tensor:
    """t (float64, (..., 1)) with Σ σ((z − t)/τ) = b: bisection, then Newton; no grad."""
    with torch.no_grad():
        z = z.detach().double()
        tau = tau.detach().double()
        n = z.shape[-1]
        # Bracket: at t = max z + τL every σ < e^{-L}, so the sum < N e^{-L} ≤ b;
        # at t = min z − τL every σ ≥ 1/(1 + e^{-L}), so the sum ≥ b.
        margin = max(math.log(n / b), -math.log(n / b - 1.0)) + 1.0
        lo = z.amin(dim=-1, keepdim=True) - tau * margin
        hi = z.amax(dim=-1, keepdim=True) + tau * margin
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            above = torch.sigmoid((z - mid) / tau).sum(dim=-1, keepdim=True) > b
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        t = 0.5 * (lo + hi)
        # A few safeguarded Newton steps polish the sum to float64 round-off.
        for _ in range(3):
            x = (z - t) / tau
            a = torch.sigmoid(x)
            slope = (a * (1 - a)).sum(dim=-1, keepdim=True) / tau  # = −dF/dt > 0
            step = (a.sum(dim=-1, keepdim=True) - b) / slope.clamp_min(1e-300)
            t = torch.minimum(torch.maximum(t + step, lo), hi)
        return t


def relaxed_top_b(
    logits: torch.Tensor,
    b: int,
    *,
    temperature,
    gumbel: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    iterations: int = 60,
) -> torch.Tensor:
    """Relaxed B-hot weights ``a_i = σ((logits_i + g_i − t)/τ)`` with ``Σ_i a_i = b``.

    ``logits`` has items along the last dimension (``(N,)`` or ``(batch, N)``);
    returns weights of the same shape and dtype, each in [0, 1], summing to
    ``b`` (float64 internally: exact to round-off, at τ down to 1e-3 and
    beyond). ``temperature`` is a positive float or a scalar tensor (e.g.
    ``policy.temperature``); gradients reach ``logits`` and ``temperature``
    (exact first derivatives, see the module docstring).

    ``gumbel``: the perturbation. None draws fresh standard Gumbel noise from
    ``generator`` (as :func:`gumbel_top_b` does); pass a tensor to reuse noise,
    or ``torch.zeros_like(logits)`` for the noise-free relaxation of the top-b
    of the logits themselves. ``iterations``: bisection steps for ``t``.
    """
    _check_logits(logits)
    n = logits.shape[-1]
    _check_budget(n, b)
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(
            "logits must be finite; drop masked items from the pool instead of using -inf"
        )
    if isinstance(temperature, torch.Tensor):
        tau = temperature.to(logits.device)
        if not tau.is_floating_point():
            tau = tau.double()
    else:
        tau = torch.tensor(float(temperature), dtype=torch.float64, device=logits.device)
    if tau.numel() != 1:
        raise ValueError(f"temperature must be a scalar, got shape {tuple(tau.shape)}")
    tau = tau.reshape(())
    if not bool(tau.detach() > 0) or not bool(torch.isfinite(tau.detach())):
        raise ValueError(f"temperature must be positive and finite, got {float(tau)}")
    z = (logits + _noise(logits, gumbel, generator)).double()
    tau64 = tau.double()
    if b == n:  # every item is taken; the weights are constant
        return torch.ones_like(logits) + 0.0 * (z.sum(-1, keepdim=True) + tau64).to(logits.dtype)

    t0 = _threshold(z, tau64, b, iterations)
    with torch.no_grad():
        x0 = (z.detach() - t0) / tau64.detach()
        log_slope = torch.nn.functional.logsigmoid(x0) + torch.nn.functional.logsigmoid(-x0)
        c = torch.softmax(log_slope, dim=-1)  # ∂t/∂z_j = σ'_j / Σσ', stable at any τ
        dt_dtau = -(c * x0).sum(dim=-1, keepdim=True)
    t = (
        t0
        + (c * (z - z.detach())).sum(dim=-1, keepdim=True)
        + dt_dtau * (tau64 - tau64.detach())
    )
    weights = torch.sigmoid((z - t) / tau64)
    return weights.to(logits.dtype)


def straight_through_top_b(
    logits: torch.Tensor,
    b: int,
    *,
    temperature,
    gumbel: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    iterations: int = 60,
) -> torch.Tensor:
    """Hard B-hot weights forward (exactly b ones, the rest 0), relaxed gradient backward.

    The ones are the top-b of ``logits + g`` — the same items
    :func:`gumbel_top_b` returns with the same noise — and the backward pass
    is that of :func:`relaxed_top_b` at the same noise and temperature
    (``hard + soft − soft.detach()``). Arguments as in :func:`relaxed_top_b`.
    """
    _check_logits(logits)
    g = _noise(logits, gumbel, generator)
    soft = relaxed_top_b(logits, b, temperature=temperature, gumbel=g, iterations=iterations)
    with torch.no_grad():
        idx = torch.topk(logits.detach() + g, b, dim=-1).indices
        hard = torch.zeros_like(soft).scatter_(-1, idx, 1.0)
    return hard + (soft - soft.detach())
