"""PANDA's selection policy: a Transformer encoder over the pool as an unordered set.

``SetTransformerPolicy(n_features)`` maps a pool ``x`` of shape ``(N, d)`` or
``(batch, N, d)`` to one logit per item, ``(N,)`` or ``(batch, N)``:
``Linear(d → width)``, ``layers`` pre-LayerNorm Transformer encoder blocks
(self-attention over the items, no positional encoding, so the map is
permutation-equivariant), a final LayerNorm and ``Linear(width → 1)``.
``softmax(logits)`` is the paper's Q; :mod:`fairal.panda.relaxed_topk` draws
B items from it in one step.

Design notes:

* Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention`
  (own block rather than ``nn.TransformerEncoderLayer``): on CPU it picks the
  memory-efficient (flash) kernel with and without grad, so an 11k-item pool
  needs O(N) memory. ``nn.TransformerEncoderLayer`` in eval mode under
  ``no_grad`` takes a "fast path" that materialises the N×N attention matrix
  (measured at N = 11,305: 2.2 GB and 11 s vs 0.25 GB and 4 s).
* The final LayerNorm and the final Linear have **no bias**: the top-B sample
  and its relaxation are invariant to adding a constant to every logit, so
  such a bias would always receive exactly zero gradient.
* ``log_temperature`` is a learnable parameter (the paper learns the Gumbel
  temperature); :attr:`temperature` is its exponential, to pass to
  ``relaxed_top_b(..., temperature=policy.temperature)``.
* ``inducing_points=m`` (extension, not in the paper) replaces self-attention
  by the Set Transformer's induced set attention block (ISAB, Lee et al.
  2019): the items attend to m learned inducing points that attend to the
  items, O(N·m) instead of O(N²). Still permutation-equivariant.
* :func:`block_logits` (for pools far larger than the policy was trained on):
  the pool is shuffled (seeded) and cut into blocks of about ``block_size``
  items, and each item attends only to its block: O(N·block) instead of
  O(N²). With ``block_size`` = the trained task pool size every item sees a
  context of the size (and, being a random sample, the make-up) the policy
  was meta-trained on.

Files: :func:`save_policy` / :func:`load_policy` write a torch file holding
only tensors and JSON strings, read back with ``torch.load(weights_only=True)``
(a policy file can never run code when it is opened).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fairal.errors import PolicyFileError  # noqa: F401 (defined there, named here too)
from fairal.trainers.device import default_device

__all__ = [
    "SetTransformerPolicy",
    "block_logits",
    "PolicyFileError",
    "save_policy",
    "load_policy",
]

_FORMAT = "fairal.panda.policy"
_VERSION = 1


class _AttentionBlock(nn.Module):
    """Pre-LN Transformer block: ``h + Attn(LN(h), LN(ctx))``, then ``h + FF(LN(h))``.

    ``cross=False``: self-attention (``context`` unused); ``cross=True``: the
    queries ``h`` attend to ``context`` (own LayerNorm). Attention is
    ``scaled_dot_product_attention`` over ``heads`` heads.
    """

    def __init__(
        self, width: int, heads: int, dim_feedforward: int, dropout: float, *, cross: bool = False
    ):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm_q = nn.LayerNorm(width)
        # Cross-attention normalises its context separately; self-attention has no
        # second norm (it would be an unused parameter).
        self.norm_kv = nn.LayerNorm(width) if cross else None
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = nn.Sequential(
            nn.Linear(width, dim_feedforward),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, width),
        )
        self.drop = nn.Dropout(dropout)

    def _split(self, t: torch.Tensor) -> torch.Tensor:  # (B, N, W) -> (B, H, N, W/H)
        b, n, w = t.shape
        return t.view(b, n, self.heads, w // self.heads).transpose(1, 2)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q_in = self.norm_q(h)
        kv_in = q_in if self.norm_kv is None else self.norm_kv(context)
        k, v = self.kv(kv_in).chunk(2, dim=-1)
        attn = F.scaled_dot_product_attention(
            self._split(self.q(q_in)),
            self._split(k),
            self._split(v),
            dropout_p=self.dropout if self.training else 0.0,
        )
        b, _, n, _ = attn.shape
        h = h + self.drop(self.out(attn.transpose(1, 2).reshape(b, n, -1)))
        return h + self.drop(self.ff(self.norm_ff(h)))


class _InducedBlock(nn.Module):
    """ISAB (Lee et al. 2019): ``H = MAB(I, X)``, ``X' = MAB(X, H)``; O(N·m)."""

    def __init__(self, width, heads, dim_feedforward, dropout, inducing_points: int):
        super().__init__()
        self.inducing = nn.Parameter(torch.randn(inducing_points, width) / math.sqrt(width))
        self.gather = _AttentionBlock(width, heads, dim_feedforward, dropout, cross=True)
        self.scatter = _AttentionBlock(width, heads, dim_feedforward, dropout, cross=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        summary = self.gather(self.inducing.expand(h.shape[0], -1, -1), context=h)
        return self.scatter(h, context=summary)


class SetTransformerPolicy(nn.Module):
    """Score every pool item in the context of the whole pool: ``(…, N, d) -> (…, N)`` logits.

    ``width`` must be divisible by ``heads``. ``dim_feedforward`` defaults to
    ``2 * width``. ``temperature`` initialises the learned Gumbel temperature
    (``log_temperature`` is a parameter). ``inducing_points`` (optional
    extension): use ISAB blocks with that many inducing points instead of full
    self-attention. :attr:`config` holds the constructor arguments.
    """

    def __init__(
        self,
        n_features: int,
        *,
        width: int = 32,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.0,
        dim_feedforward: int | None = None,
        temperature: float = 1.0,
        inducing_points: int | None = None,
    ):
        super().__init__()
        for name, value in (("n_features", n_features), ("width", width), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
            raise ValueError(f"layers must be a non-negative int, got {layers!r}")
        if width % heads:
            raise ValueError(
                f"width must be divisible by heads, got width={width} and heads={heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
        if inducing_points is not None and (
            isinstance(inducing_points, bool)
            or not isinstance(inducing_points, int)
            or inducing_points < 1
        ):
            raise ValueError(
                f"inducing_points must be None or a positive int, got {inducing_points!r}"
            )
        ff = 2 * width if dim_feedforward is None else int(dim_feedforward)
        self.config: dict[str, Any] = {
            "n_features": n_features,
            "width": width,
            "layers": layers,
            "heads": heads,
            "dropout": float(dropout),
            "dim_feedforward": ff,
            "temperature": float(temperature),
            "inducing_points": inducing_points,
        }
        self.n_features = n_features
        self.input = nn.Linear(n_features, width)
        blocks: list[nn.Module]
        if inducing_points is None:
            blocks = [_AttentionBlock(width, heads, ff, dropout) for _ in range(layers)]
        else:
            blocks = [
                _InducedBlock(width, heads, ff, dropout, inducing_points) for _ in range(layers)
            ]
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(width, bias=False)
        self.score = nn.Linear(width, 1, bias=False)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        """``exp(log_temperature)``: a scalar tensor that gradients flow through."""
        return self.log_temperature.exp()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Contextual representation of every item, ``(…, N, width)``, after the final LayerNorm."""
        if x.ndim not in (2, 3) or x.shape[-1] != self.n_features:
            raise ValueError(
                f"x must have shape (N, {self.n_features}) or (batch, N, {self.n_features}), "
                f"got {tuple(x.shape)}"
            )
        squeeze = x.ndim == 2
        h = self.input(x.unsqueeze(0) if squeeze else x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return h.squeeze(0) if squeeze else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per item: ``(N, d) -> (N,)``, ``(batch, N, d) -> (batch, N)``."""
        return self.score(self.encode(x)).squeeze(-1)


def _block_rows(n: int, block_size: int, order: torch.Tensor) -> list[torch.Tensor]:
    """``order`` (a permutation of n) cut into ``ceil(n / block_size)`` blocks of sizes differing by at
    most one: a list of at most two ``(blocks, size)`` index tensors (the larger blocks first)."""
    n_blocks = -(-n // block_size)
    size, extra = divmod(n, n_blocks)
    cut = extra * (size + 1)
    parts = [order[:cut].view(extra, size + 1)] if extra else []
    return parts + [order[cut:].view(n_blocks - extra, size)]


def block_logits(policy: SetTransformerPolicy, x: torch.Tensor, *, block_size: int, seed: int = 0,
                 max_batch_items: int = 1 << 18) -> torch.Tensor:
    """``policy``'s logits for a large pool ``x`` of shape ``(N, d)``, each item scored in the context
    of a random block of about ``block_size`` pool items: ``(N,)``, O(N·block_size) time.

    The blocks are a seeded random partition (``seed``); up to ``max_batch_items`` items go through
    the encoder per batch. A pool of at most ``block_size`` items is one block: full attention.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, d), got {tuple(x.shape)}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    n = x.shape[0]
    if n <= block_size:
        return policy(x)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n, generator=generator).to(x.device)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for rows in _block_rows(n, block_size, order):
        step = max(1, max_batch_items // rows.shape[1])
        for start in range(0, rows.shape[0], step):
            chunk = rows[start:start + step]
            out[chunk.reshape(-1)] = policy(x[chunk]).reshape(-1).to(out.dtype)
    return out


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #


def save_policy(
    policy: SetTransformerPolicy, path: str | os.PathLike, *, metadata: Mapping[str, Any]
) -> None:
    """Write ``policy`` (weights + constructor arguments) and JSON ``metadata`` to ``path``.

    The constructor arguments are stored under ``metadata["policy_config"]``
    (added for you; any value given there is replaced), so :func:`load_policy`
    can rebuild the module. ``metadata`` must be JSON-serialisable.
    """
    if not isinstance(policy, SetTransformerPolicy):
        raise TypeError(f"policy must be a SetTransformerPolicy, got {type(policy).__name__}")
    meta = dict(metadata)
    meta["policy_config"] = dict(policy.config)
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be JSON-serialisable ({error})") from error
    state = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
    payload = {"format": _FORMAT, "version": _VERSION, "metadata": meta_json, "state_dict": state}
    torch.save(payload, path)


def load_policy(
    path: str | os.PathLike, *, device: torch.device | str | None = None
) -> tuple[SetTransformerPolicy, dict[str, Any]]:
    """Read a file written by :func:`save_policy`: ``(policy in eval mode, metadata)``.

    Raises :class:`PolicyFileError` (naming ``path``) when the file is corrupt
    or not a PANDA policy, ``FileNotFoundError`` when it does not exist.
    The policy lands on ``device`` (default: :func:`fairal.trainers.device.default_device`).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no PANDA policy file at {os.fspath(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise PolicyFileError(
            f"{os.fspath(path)!r} is not a readable PANDA policy file ({_reason(error)})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise PolicyFileError(f"{os.fspath(path)!r} is not a PANDA policy file (no policy header)")
    if payload.get("version") != _VERSION:
        raise PolicyFileError(
            f"{os.fspath(path)!r} has policy file version {payload.get('version')!r}; "
            f"this fairal reads version {_VERSION}"
        )
    try:
        metadata = json.loads(payload["metadata"])
        policy = SetTransformerPolicy(**metadata["policy_config"])
        policy.load_state_dict(payload["state_dict"])
    except Exception as error:
        raise PolicyFileError(
            f"{os.fspath(path)!r} is a damaged PANDA policy file ({_reason(error)})"
        ) from error
    return policy.to(device or default_device()).eval(), metadata


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
