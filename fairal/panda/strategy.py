"""PANDA's learned selection policy as a query strategy.

The policy is agnostic to the current classifier (PANDA §3.3): one forward
pass scores the whole pool, and one Gumbel-top-B draw (seeded by
``random_state``) fixes the order of every pick, so the ranking is computed
once per draw (``adaptive = False``) and selection is as fast as a forward
pass. The policy reads the representation it was trained with (stored in the
policy file) plus a one-hot of each item's group.

Large pools (issue 13): full attention costs O(N²) (248 s for a 250k-item pool on 2 CPU cores).
``context="auto"`` (the default) keeps full attention up to :data:`AUTO_BLOCKS_ABOVE` pool items and
above that scores each item within a random block of the policy's trained task pool size
(:func:`fairal.panda.policy.block_logits`, O(N·block)); the quality check that chose this scheme is
``benchmarks/panda_large_pool.py`` (results/panda_large_pool.md). An ISAB policy (``inducing_points``)
is linear already and always sees the whole pool. On CUDA the encoder runs in bfloat16
(``precision="auto"``), on the CPU in float32. :meth:`PandaSampling.encoder` says what a pool of a
given size gets, :meth:`PandaSampling.describe` says it in words (the Label / Setup pages show it).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fairal.errors import PolicyMismatchError  # noqa: F401 (defined there, named here too)
from fairal.strategies import register
from fairal.strategies._base import ScoreBasedStrategy

__all__ = ["PandaSampling", "EncoderChoice", "AUTO_BLOCKS_ABOVE", "CONTEXTS", "PRECISIONS", "encoder_dtype",
           "DEFAULT_POLICY", "PolicyMismatchError", "policy_file", "policy_ref",
           "policy_misfit", "policies_for", "TRAIN_POLICY_HINT", "TRAIN_POLICY_COMMAND"]

#: The policy shipped with fairal: meta-trained on Adult's meta-train half, sex as the group.
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "data" / "policies" / "panda-adult-sex.pt"
SHIPPED_POLICIES = DEFAULT_POLICY.parent

#: How to get a policy for other data (plain words: shown in the app as well as on the command line).
TRAIN_POLICY_COMMAND = "python -m fairal train-policy --csv FILE --label COLUMN --sensitive COLUMN --out FILE.pt"
TRAIN_POLICY_HINT = f"train one for this data on the Setup page (PANDA policies), or with {TRAIN_POLICY_COMMAND}"


#: ``context="auto"`` scores pools larger than this in random blocks. Full attention up to it keeps
#: the 11,306-item Adult pool's exact ranking; above, its O(N²) cost grows fast (2 CPU cores: 4.9 s
#: CPU for 25,000 items against 0.8 s in blocks; benchmarks/results/scale.md).
AUTO_BLOCKS_ABOVE = 12_000
#: How the policy sees the pool: "auto" (see the module docstring), "full" attention, random "blocks".
CONTEXTS = ("auto", "full", "blocks")
#: The encoder's number format: "auto" (bfloat16 on CUDA, float32 on the CPU), "fp32", "bf16".
PRECISIONS = ("auto", "fp32", "bf16")
_FALLBACK_BLOCK = 2000  # a policy file that does not record its task pool size (PANDA's own setting)


@dataclass(frozen=True)
class EncoderChoice:
    """How a pool of ``pool_size`` items is scored: ``scheme`` "full" (self-attention over the whole
    pool, O(N²)), "blocks" (attention within random blocks of ``block_size`` items, O(N·block)) or
    "isab" (the policy's inducing points, O(N·m)); on ``device`` in ``dtype`` ("float32"/"bfloat16")."""

    scheme: str
    pool_size: int
    block_size: int | None
    device: str
    dtype: str

    def describe(self) -> str:
        """One line for the app, e.g. "random blocks of 2,000 items (linear in the pool), float32 on cpu"."""
        if self.scheme == "blocks":
            block = int(self.block_size or 1)
            what = (f"attention within random blocks of {block:,} items, the policy's trained pool size "
                    f"(linear in the pool; {-(-self.pool_size // block):,} blocks)")
        elif self.scheme == "isab":
            what = "induced set attention over the whole pool (linear in the pool)"
        else:
            what = f"full attention over all {self.pool_size:,} pool items"
        return f"{what}, {self.dtype} on {self.device}"


def encoder_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """bfloat16 for ``precision="bf16"``, or "auto" on CUDA; float32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    auto_bf16 = precision == "auto" and torch.device(device).type == "cuda"
    return torch.bfloat16 if precision == "bf16" or auto_bf16 else torch.float32


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime: float):
    from fairal.panda.train import load_trained_policy

    return load_trained_policy(path)


def policy_file(ref: str | os.PathLike | None) -> Path:
    """The file a project's ``policy_path`` names: None is the default (``$FAIRAL_PANDA_POLICY`` or
    the shipped Adult policy), a bare file name one shipped with fairal, anything else a path."""
    if not ref:
        return Path(os.environ.get("FAIRAL_PANDA_POLICY", DEFAULT_POLICY))
    path = Path(ref)
    if len(path.parts) == 1 and (SHIPPED_POLICIES / path).exists():
        return SHIPPED_POLICIES / path
    return path


def policy_ref(path: str | os.PathLike) -> str:
    """What a project stores for ``path``: the bare name of a shipped policy (the checkout may move),
    else the absolute path."""
    path = Path(path).resolve()
    return path.name if path.parent == SHIPPED_POLICIES.resolve() else str(path)


def _same_name(a, b) -> bool:
    def stem(name) -> str:
        name = str(name or "").removeprefix("csv:").lower()
        return name.removesuffix(".csv")

    return stem(a) == stem(b)


def policy_misfit(path: str | os.PathLike, dataset) -> str | None:
    """Why the policy file at ``path`` cannot rank ``dataset``, in plain words; None when it can.

    It fits when its representation reads the data's feature count, it was trained with the same
    sensitive attribute, knows every group, and was trained on this data: the same feature columns
    when the file records them (policies trained by fairal now do), else the same data set name.
    """
    path = Path(path)
    try:
        trained = _load(str(path), path.stat().st_mtime)
    except (OSError, ValueError) as error:  # PolicyFileError and ModelFileError are ValueErrors
        return f"{path.name} cannot be read ({error})"
    meta, n_features = trained.metadata, trained.representation.n_features
    if n_features != dataset.X.shape[1]:
        return (f"{path.name}, trained on {meta.get('dataset')}, reads {n_features} input features; "
                f"{dataset.name} has {dataset.X.shape[1]}")
    if meta.get("sensitive") != dataset.sensitive:
        return f"{path.name} was trained with the sensitive attribute {meta.get('sensitive')}, not {dataset.sensitive}"
    recorded = meta.get("feature_names")
    same = recorded == list(dataset.feature_names) if recorded is not None else _same_name(meta.get("dataset"),
                                                                                             dataset.name)
    if not same:
        return f"{path.name} was trained on other data ({meta.get('dataset')}), not {dataset.name}"
    unknown = sorted(set(map(str, dataset.group_names)) - set(trained.group_names))
    if unknown:
        return f"{path.name} knows the groups {', '.join(trained.group_names)}, not {', '.join(unknown)}"
    return None


def policies_for(dataset, *, folders=()) -> list[Path]:
    """The policy files that fit ``dataset``: the default one, those shipped with fairal, then the
    ``*.pt`` files of ``folders`` (newest first; e.g. the policies trained next to a database)."""
    candidates = [policy_file(None), *sorted(SHIPPED_POLICIES.glob("*.pt"))]
    for folder in folders:
        found = [p for p in Path(folder).glob("*.pt") if p.is_file()]
        candidates += sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    fitting, seen = [], set()
    for path in candidates:
        key = path.resolve()
        if key not in seen and path.exists() and policy_misfit(path, dataset) is None:
            fitting.append(path)
        seen.add(key)
    return fitting


@register
class PandaSampling(ScoreBasedStrategy):
    """Rank the pool by policy logits + Gumbel noise (one Gumbel-top-|U| draw)."""

    name = "panda"
    needs_model = False
    adaptive = False

    def __init__(self, *, policy_path: str | os.PathLike | None = None, random_state: int | None = None,
                 context: str = "auto", block_size: int | None = None, precision: str = "auto"):
        super().__init__(random_state=random_state)
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int)
                                       or block_size < 1):
            raise ValueError(f"block_size must be None or a positive int, got {block_size!r}")
        encoder_dtype(torch.device("cpu"), precision)  # checks the name
        self.policy_path = policy_path
        self.context, self.block_size, self.precision = context, block_size, precision
        #: The :class:`EncoderChoice` of the last pool scored (None before the first).
        self.last_encoder: EncoderChoice | None = None

    def encoder(self, pool_size: int) -> EncoderChoice:
        """How a pool of ``pool_size`` items would be scored (reads the policy file, scores nothing)."""
        trained = self.trained_policy()
        device = next(trained.policy.parameters()).device
        block = self.block_size or int((trained.metadata.get("config") or {}).get("pool_size") or _FALLBACK_BLOCK)
        isab = trained.policy.config.get("inducing_points") is not None
        if self.context == "blocks" and pool_size > block:
            scheme = "blocks"
        elif self.context == "auto" and not isab and pool_size > max(AUTO_BLOCKS_ABOVE, block):
            scheme = "blocks"
        else:
            scheme = "isab" if isab else "full"
        dtype = encoder_dtype(device, self.precision)
        return EncoderChoice(scheme=scheme, pool_size=int(pool_size), block_size=block if scheme == "blocks" else None,
                             device=str(device), dtype=str(dtype).removeprefix("torch."))

    def describe(self, pool_size: int | None = None) -> str:
        """In words, how PANDA scores a pool of ``pool_size`` items (default: the last pool scored)."""
        if pool_size is None:
            if self.last_encoder is None:
                raise ValueError("describe() needs a pool size before the first ranking")
            return self.last_encoder.describe()
        return self.encoder(pool_size).describe()

    def trained_policy(self):
        path = policy_file(self.policy_path)
        if not path.exists():
            raise FileNotFoundError(f"no PANDA policy at {path}; {TRAIN_POLICY_HINT}")
        return _load(str(path), path.stat().st_mtime)

    def _pool_scores(self, model, X, unlabeled, labeled, y, groups):
        if groups is None:
            raise ValueError("the 'panda' strategy needs the sensitive group of every row (groups=...)")
        return self.score_items(X[unlabeled], np.asarray(groups)[unlabeled])

    def score(self, model, X_unlabeled):  # pragma: no cover - _pool_scores passes the groups itself
        raise NotImplementedError("PandaSampling scores need groups; call rank() or query()")

    def score_items(self, X_items: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Policy logits plus seeded Gumbel noise for the given items."""
        from fairal.panda.relaxed_topk import sample_gumbel
        from fairal.panda.train import policy_inputs

        trained = self.trained_policy()
        rep, names = trained.representation, trained.group_names
        X_items = np.asarray(X_items, dtype=np.float32)
        if X_items.shape[1] == rep.n_features:
            features = rep.transform(X_items)
        elif X_items.shape[1] == rep.dim:  # already in the representation (simulate passes it)
            features = X_items
        else:
            raise PolicyMismatchError(
                f"the PANDA policy reads {rep.n_features} input features (or {rep.dim} represented ones), "
                f"got {X_items.shape[1]}; {TRAIN_POLICY_HINT}")
        values, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise PolicyMismatchError(
                f"the PANDA policy was trained for groups {names} ({trained.metadata.get('dataset')}, "
                f"{trained.metadata.get('sensitive')}); these items have {unknown}")
        codes = np.array([names.index(v) for v in values], dtype=np.int64)[codes.reshape(-1)]
        logits = self._logits(trained.policy, policy_inputs(features, codes, len(names)))
        generator = torch.Generator().manual_seed(int(self.random_state or 0))
        noise = sample_gumbel(logits.shape, generator=generator, dtype=torch.float64)
        return (logits + noise).numpy()

    def _logits(self, policy, inputs: np.ndarray) -> torch.Tensor:
        """The policy's logits (float64, CPU) under the encoder choice for this pool."""
        from fairal.panda.policy import block_logits

        choice = self.encoder(len(inputs))
        device = torch.device(choice.device)
        dtype = getattr(torch, choice.dtype)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            x = torch.as_tensor(inputs, device=device)
            if choice.scheme == "blocks":
                logits = block_logits(policy, x, block_size=int(choice.block_size or 1),
                                      seed=int(self.random_state or 0) + 1)
            else:
                logits = policy(x)
        self.last_encoder = choice
        return logits.double().cpu()
