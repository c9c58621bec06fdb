"""PANDA meta-training (Algorithm 1): forward–backward splitting over simulated labeling tasks.

Each iteration draws a task from the existing labeled data D (PANDA's
meta-train half): a pool L, a validation set V and a small labeled seed S
(the same seed the app and ``simulate`` start from), all disjoint.
ACTIVELEARNSIM is unrolled in one shot, as the paper does for a policy that
is agnostic to the classifier: the policy scores L, the relaxed Gumbel-top-B
gives B-hot weights, and the inner learner (a zero-initialised linear head,
``inner_steps`` full-batch gradient steps, :func:`fairal.panda.inner.train_head`)
trains on S ∪ weighted L. Then

- **forward step** (line 4): θ̂ = Adam step on the validation BCE of the head;
- **backward (proximal) step** (line 5): ``prox_steps`` gradient steps on
  η·χ̃(θ) + ½‖θ − θ̂‖², χ̃ = 0 when the validation disparity ≤ ρ and the
  (differentiable, probability-based) disparity otherwise; the disparity
  gradient is normalised to length ``prox_lr`` (small normalised steps were
  stable where raw ones swung the policy, ALGORITHMS.md).

Choices the paper leaves open, made here and why:

- Relaxation: the sigmoid-threshold relaxed top-B (weights in [0, 1] that
  sum to B, exact implicit gradients); the iterative softmax misbehaves at
  B = 400 (ALGORITHMS.md). The Gumbel temperature is a learned parameter,
  clamped to [``min_temperature``, ``max_temperature``] = [0.02, 0.3]: the
  validation loss always prefers a larger τ (softer weights give the inner
  learner more data), which would train the policy for a learner that sees
  far more than B examples.
- Policy input: the shared pretrained representation of each item plus a
  one-hot of its sensitive group (a policy that cannot see groups cannot
  pursue parity; the classifier itself never sees the group).
- Disparity: PANDA's Table 1 demographic parity ("to overall") by default.
- Model selection: every ``eval_every`` iterations the policy is scored on
  fixed held-out tasks with the *hard* Gumbel-top-B and the same learner;
  the kept policy is the best feasible one (hard disparity ≤ ρ, highest F1),
  else the least disparate (selection on the hard, not smoothed, disparity).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fairal import metrics
from fairal.panda.config import MetaConfig  # re-exported: fairal.panda.train.MetaConfig
from fairal.panda.inner import fit_logistic, train_linear_heads
from fairal.panda.policy import SetTransformerPolicy, load_policy, save_policy
from fairal.panda.relaxed_topk import gumbel_top_b, relaxed_top_b, sample_gumbel
from fairal.panda.representation import Representation
from fairal.trainers.device import default_device

__all__ = ["MetaConfig", "MetaTrainingResult", "meta_train", "proximal_step", "policy_inputs", "save_trained_policy",
           "load_trained_policy", "TrainedPolicy", "train_policy", "fit_task_sizes",
           "MetaTrainingData", "prepare_meta_training", "write_policy"]

logger = logging.getLogger(__name__)


@dataclass
class MetaTrainingResult:
    policy: SetTransformerPolicy
    history: pd.DataFrame
    best: dict
    seconds: float


def policy_inputs(features: np.ndarray, group_codes: np.ndarray, n_groups: int) -> np.ndarray:
    """What the policy sees of an item: its representation and a one-hot of its group."""
    onehot = np.eye(n_groups, dtype=np.float32)[np.asarray(group_codes, dtype=np.int64)]
    return np.concatenate([np.asarray(features, dtype=np.float32), onehot], axis=1)


class _Tasks:
    """Draws disjoint (seed, pool, validation) index triples from D, and their Gumbel noise."""

    def __init__(self, n: int, y: np.ndarray, config: MetaConfig, rng: np.random.Generator,
                 generator: torch.Generator, device):
        need = config.n_initial + config.pool_size + config.validation_size
        if need > n:
            raise ValueError(f"a task needs {need} rows (n_initial + pool_size + validation_size), "
                             f"but the meta-train data has {n}")
        if config.budget > config.pool_size:
            raise ValueError(f"budget ({config.budget}) is larger than the task pool ({config.pool_size})")
        self.n, self.y, self.config, self.rng = n, y, config, rng
        self.generator, self.device = generator, device

    def draw(self):
        c = self.config
        for _ in range(100):
            order = self.rng.permutation(self.n)
            seed = order[:c.n_initial]
            if c.n_initial == 0 or len(np.unique(self.y[seed])) == 2:
                pool = order[c.n_initial:c.n_initial + c.pool_size]
                val = order[c.n_initial + c.pool_size:c.n_initial + c.pool_size + c.validation_size]
                return seed, pool, val
        raise ValueError("could not draw a seed set with both classes")

    def noise(self) -> torch.Tensor:
        return sample_gumbel((self.config.pool_size,), generator=self.generator).to(self.device)

    def batch(self, m: int, *, noise_each: bool = False) -> _TaskBatch:
        """``m`` tasks stacked: index tensors (m, ·) and Gumbel noise (m, pool_size).

        The numpy stream draws the tasks and the torch generator the noise, in task order, so
        ``batch(1)`` consumes both streams exactly as one unbatched task did.
        """
        drawn = [self.draw() for _ in range(m)]
        noise = torch.stack([self.noise() for _ in range(m)])
        seed, pool, val = (torch.as_tensor(np.stack(part), device=self.device) for part in zip(*drawn))
        return _TaskBatch(seed, pool, val, noise)


@dataclass
class _TaskBatch:
    seed: torch.Tensor   # (M, n_initial) row indices of D
    pool: torch.Tensor   # (M, pool_size)
    val: torch.Tensor    # (M, validation_size)
    gumbel: torch.Tensor  # (M, pool_size)


class _TaskData:
    """D on the device: the learner's features, the policy's inputs, labels and groups."""

    def __init__(self, features, y, group_codes, n_groups: int, device):
        self.features = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
        self.inputs = torch.as_tensor(policy_inputs(features, group_codes, n_groups), device=device)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=device)
        self.groups = torch.as_tensor(np.asarray(group_codes), dtype=torch.int64, device=device)


def _learner(c: MetaConfig, data: _TaskData):
    """ACTIVELEARNSIM's classifier, batched over tasks: (batch, pool weights (M, P)) → (W (M, k), b (M,)).

    Trained on the seed (weight 1) and the pool (the selection weights). ``"head"`` unrolls
    ``inner_steps`` gradient steps of a linear head from zero; ``"erm"`` solves the L2 logistic
    regression the app's "erm" trainer deploys, to convergence, with implicit gradients.
    """
    def learn(batch: _TaskBatch, weights: torch.Tensor):
        rows = torch.cat([batch.seed, batch.pool], dim=1)
        w = torch.cat([torch.ones(batch.seed.shape, device=weights.device, dtype=weights.dtype), weights], dim=1)
        if c.inner_learner == "erm":
            return fit_logistic(data.features[rows], data.y[rows], w, C=c.inner_C)
        return train_linear_heads(data.features[rows], data.y[rows], w, steps=c.inner_steps, lr=c.inner_lr,
                                  l2=c.inner_l2)
    return learn


def _check_config(c: MetaConfig) -> None:
    if c.inner_learner not in ("head", "erm"):
        raise ValueError(f"inner_learner must be 'head' or 'erm', got {c.inner_learner!r}")
    if isinstance(c.meta_batch, bool) or not isinstance(c.meta_batch, int) or c.meta_batch < 1:
        raise ValueError(f"meta_batch must be a positive int, got {c.meta_batch!r}")
    if not c.inner_C > 0:
        raise ValueError(f"inner_C must be positive, got {c.inner_C!r}")
    if not 0 < c.min_temperature <= c.max_temperature:
        raise ValueError(f"need 0 < min_temperature <= max_temperature, got {c.min_temperature} and "
                         f"{c.max_temperature}")


def proximal_step(policy: torch.nn.Module, disparity_fn: Callable[[], torch.Tensor], *, rho: float,
                  step_size: float, steps: int) -> int:
    """Approximate prox: argmin_θ η·χ̃(θ) + ½‖θ − θ̂‖² by a few gradient steps from θ̂ (the current θ).

    ``disparity_fn`` returns one disparity or one per task (M,); χ̃ is the mean over tasks of
    max(disparity − ρ, 0), so the step stops once every task meets ρ. Each step moves θ by
    ``step_size`` along the normalised gradient of χ̃ plus ``step_size·(θ − θ̂)`` back towards θ̂.
    Returns the number of steps taken.
    """
    params = list(policy.parameters())
    anchor = [p.detach().clone() for p in params]
    taken = 0
    for _ in range(steps):
        violation = (disparity_fn() - rho).clamp_min(0).mean()
        if float(violation.detach()) <= 0:
            break
        grads = torch.autograd.grad(violation, params, allow_unused=True)
        norm = torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.tensor(0.0)))
        if not torch.isfinite(norm) or norm == 0:
            break
        with torch.no_grad():
            for p, g, a in zip(params, grads, anchor):
                step = (step_size * g / norm) if g is not None else 0.0
                p.sub_(step + step_size * (p - a))
        taken += 1
    return taken


class _MetaStep:
    """One task batch through policy → relaxed top-B → learner → validation loss and disparity."""

    def __init__(self, policy: SetTransformerPolicy, data: _TaskData, c: MetaConfig):
        self.policy, self.data, self.c = policy, data, c
        self.learn = _learner(c, data)

    def scores(self, pool: torch.Tensor) -> torch.Tensor:
        inputs = self.data.inputs[pool]
        if self.c.bf16:
            with torch.autocast(inputs.device.type, dtype=torch.bfloat16):
                return self.policy(inputs).float()
        return self.policy(inputs)

    def validation_logits(self, batch: _TaskBatch, weights: torch.Tensor) -> torch.Tensor:
        weight, bias = self.learn(batch, weights)
        return torch.einsum("mvk,mk->mv", self.data.features[batch.val], weight) + bias[:, None]

    def __call__(self, batch: _TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean validation BCE over the tasks, soft disparity per task (M,))."""
        c = self.c
        tau = self.policy.temperature.clamp(c.min_temperature, c.max_temperature)
        weights = relaxed_top_b(self.scores(batch.pool), c.budget, temperature=tau, gumbel=batch.gumbel)
        logits = self.validation_logits(batch, weights)
        loss = F.binary_cross_entropy_with_logits(logits, self.data.y[batch.val])
        disparity = metrics.soft_demographic_parity(torch.sigmoid(logits), self.data.groups[batch.val],
                                                    method=cast(metrics.Method, c.disparity))
        return loss, disparity

    @torch.no_grad()
    def evaluate(self, batch: _TaskBatch, chosen: torch.Tensor) -> dict:
        """Hard selection ``chosen`` (M, B) through the same learner: mean F1, DP and positive share."""
        weights = torch.zeros(batch.pool.shape, device=chosen.device).scatter_(1, chosen, 1.0)
        with torch.enable_grad():  # the learners build graphs of their own
            logits = self.validation_logits(batch, weights).detach()
        predicted = (logits > 0).long().cpu().numpy()
        truth, groups = self.data.y[batch.val].long().cpu().numpy(), self.data.groups[batch.val].cpu().numpy()
        method = cast(metrics.Method, self.c.disparity)
        return {"eval_f1": float(np.mean([metrics.f1(t, p) for t, p in zip(truth, predicted)])),
                "eval_disparity": float(np.mean([
                    metrics.demographic_parity_difference(t, p, sensitive_features=g, method=method)
                    for t, p, g in zip(truth, predicted, groups)])),
                "eval_positive_share": float(torch.gather(self.data.y[batch.pool], 1, chosen).mean())}

    def policy_picks(self, batch: _TaskBatch) -> torch.Tensor:
        return gumbel_top_b(self.scores(batch.pool), self.c.budget, gumbel=batch.gumbel)

    def random_picks(self, batch: _TaskBatch) -> torch.Tensor:
        return gumbel_top_b(torch.zeros(batch.pool.shape, device=batch.pool.device), self.c.budget,
                            gumbel=batch.gumbel)


def _new_policy(c: MetaConfig, n_inputs: int, device) -> SetTransformerPolicy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(c.seed)
        return SetTransformerPolicy(n_inputs, width=c.width, layers=c.layers, heads=c.heads,
                                    temperature=c.temperature,
                                    inducing_points=c.inducing_points or None).to(device)


def _train_iteration(step: _MetaStep, optimizer, batch: _TaskBatch, c: MetaConfig) -> dict:
    """Forward (Adam on the validation loss) then proximal step, on one batch of M tasks."""
    policy = step.policy
    policy.train()
    loss, disparity = step(batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # project τ back into its box (a clamp alone would freeze it outside)
        policy.log_temperature.clamp_(np.log(c.min_temperature), np.log(c.max_temperature))
    prox_taken = proximal_step(policy, lambda: step(batch)[1], rho=c.rho, step_size=c.prox_lr,
                               steps=c.prox_steps)
    return {"val_loss": float(loss.detach()), "val_soft_disparity": float(disparity.detach().mean()),
            "temperature": float(policy.temperature.detach()), "prox_steps": prox_taken}


def meta_train(features: np.ndarray, y: np.ndarray, group_codes: np.ndarray, n_groups: int, *,
               config: MetaConfig | None = None,
               progress: Callable[[int, dict], None] | None = None) -> MetaTrainingResult:
    """Meta-train a selection policy on D = (features, y, group_codes); see the module docstring.

    Each iteration takes ``config.meta_batch`` tasks at once: (M, N, d) through the encoder, the
    learner batched over tasks; the forward step follows the mean validation loss of the M tasks
    and the proximal step their mean violation. ``meta_batch=1`` is the one-task step.
    """
    c = config or MetaConfig()
    _check_config(c)
    start_time = time.perf_counter()
    device = default_device()
    data = _TaskData(features, y, group_codes, n_groups, device)
    tasks = _Tasks(len(data.y), np.asarray(y), c, np.random.default_rng(c.seed),
                   torch.Generator().manual_seed(c.seed), device)
    policy = _new_policy(c, data.inputs.shape[1], device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=c.lr)
    step = _MetaStep(policy, data, c)
    eval_batch = tasks.batch(c.eval_tasks)
    baseline = step.evaluate(eval_batch, step.random_picks(eval_batch))
    history: list[dict] = []
    best: dict[str, Any] = {}
    best_state: dict[str, torch.Tensor] = {}
    for iteration in range(1, c.iterations + 1):
        row = {"iteration": iteration, **_train_iteration(step, optimizer, tasks.batch(c.meta_batch), c)}
        if iteration % c.eval_every == 0 or iteration == c.iterations:
            policy.eval()
            row.update(step.evaluate(eval_batch, step.policy_picks(eval_batch)))
            feasible = row["eval_disparity"] <= c.rho
            key = (feasible, row["eval_f1"] if feasible else -row["eval_disparity"])
            if not best or key > best["key"]:
                best = {"key": key, "iteration": iteration, **{k: row[k] for k in row if k.startswith("eval_")}}
                best_state = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        history.append(row)
        if progress is not None:
            progress(iteration, row)
    if best_state:  # empty only when c.iterations < 1
        policy.load_state_dict(best_state)
    policy.eval()
    best = {k: v for k, v in best.items() if k != "key"}
    best.update({f"random_{k}": v for k, v in baseline.items()})
    return MetaTrainingResult(policy=policy, history=pd.DataFrame(history), best=best,
                              seconds=time.perf_counter() - start_time)


@dataclass
class TrainedPolicy:
    """A policy file's contents: the policy, the representation it reads, and its provenance."""

    policy: SetTransformerPolicy
    representation: Representation
    metadata: dict

    @property
    def group_names(self) -> list[str]:
        return list(self.metadata["group_names"])


def save_trained_policy(path, result: MetaTrainingResult, representation: Representation, *,
                        config: MetaConfig, group_names, dataset: str, sensitive: str, split_seed: int,
                        feature_names=None) -> None:
    """Write policy + representation + provenance to one file (tensors and JSON, no pickles).

    ``feature_names`` (the columns of the data's ``X``) let :func:`fairal.panda.strategy.policy_misfit`
    recognise the same data under another file name.
    """
    save_policy(result.policy, path, metadata={
        "dataset": dataset, "sensitive": sensitive, "split_seed": split_seed,
        "group_names": [str(g) for g in group_names], "config": asdict(config),
        **({"feature_names": [str(f) for f in feature_names]} if feature_names is not None else {}),
        "learner": ({"kind": "erm", "C": config.inner_C} if config.inner_learner == "erm" else
                    {"kind": "head", "steps": config.inner_steps, "lr": config.inner_lr, "l2": config.inner_l2}),
        "best": result.best, "training_seconds": result.seconds, "torch": torch.__version__,
        "representation": base64.b64encode(representation.to_bytes()).decode("ascii"),
    })


def load_trained_policy(path, *, device=None) -> TrainedPolicy:
    """Read a file written by :func:`save_trained_policy` (``torch.load(weights_only=True)``)."""
    policy, metadata = load_policy(path, device=device)
    try:
        representation = Representation.from_bytes(base64.b64decode(metadata["representation"]))
    except (KeyError, ValueError) as error:
        from fairal.panda.policy import PolicyFileError

        raise PolicyFileError(f"{path!s} has no usable representation ({error})") from error
    return TrainedPolicy(policy=policy, representation=representation, metadata=metadata)


def fit_task_sizes(config: MetaConfig, n_rows: int) -> MetaConfig:
    """``config`` with smaller tasks when one task (seed + pool + validation) needs more than ``n_rows``.

    The pool and the validation set shrink in their ratio and the budget to at most half the pool;
    a config that fits is returned unchanged.
    """
    c = config
    if c.n_initial + c.pool_size + c.validation_size <= n_rows:
        return c
    available = n_rows - c.n_initial
    if available < 20:
        raise ValueError(f"meta-training needs at least {c.n_initial + 20} rows in the meta-train half "
                         f"(half of the data), got {n_rows}")
    pool = max(10, int(available * c.pool_size / (c.pool_size + c.validation_size)))
    return replace(c, pool_size=pool, validation_size=available - pool, budget=min(c.budget, pool // 2))


@dataclass
class MetaTrainingData:
    """What meta-training reads: D0's representation features, labels and groups, and the representation."""

    representation: Representation
    features: np.ndarray
    y: np.ndarray
    group_codes: np.ndarray
    n_groups: int


def prepare_meta_training(dataset, config: MetaConfig, *, split_seed: int = 0,
                          stage: Callable[[str], None] | None = None) -> MetaTrainingData:
    """PANDA's split (``split_seed``) and a representation pretrained on its meta-train half D0.

    Checks first (before minutes of pretraining) that ``dataset`` has two classes and that one
    task of ``config`` fits in D0. Meta-training then reads D0 only, so a project with the same
    split seed never trains the policy on its pool or test items.
    """
    from fairal.datasets import panda_split
    from fairal.panda.representation import pretrain_representation

    say = stage or (lambda message: None)
    if len(dataset.classes) != 2:
        raise ValueError(f"PANDA policies are for two classes; {dataset.name} has {len(dataset.classes)}")
    D0 = panda_split(len(dataset), seed=split_seed).meta_train
    need = config.n_initial + config.pool_size + config.validation_size
    if need > len(D0):
        raise ValueError(f"a meta-training task needs {need} rows (n_initial + pool_size + validation_size) "
                         f"but the meta-train half of {dataset.name} has {len(D0)}; lower pool_size and "
                         f"validation_size")
    if len(np.unique(dataset.y[D0])) < 2:
        raise ValueError(f"the meta-train half of {dataset.name} has one class only")
    say(f"pretraining the representation on the meta-train half ({len(D0):,} rows)")
    representation = pretrain_representation(dataset.X[D0], dataset.y[D0], random_state=split_seed)
    return MetaTrainingData(representation=representation, features=representation.transform(dataset.X[D0]),
                            y=np.asarray(dataset.y[D0]), group_codes=np.asarray(dataset.group_codes[D0]),
                            n_groups=len(dataset.group_names))


def write_policy(out, result: MetaTrainingResult, data: MetaTrainingData, dataset, *, config: MetaConfig,
                 split_seed: int) -> None:
    """Write the policy file (a temporary file renamed: a half-written policy is never seen) and
    ``<out>.history.csv`` beside it."""
    from pathlib import Path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    save_trained_policy(partial, result, data.representation, config=config, group_names=dataset.group_names,
                        dataset=dataset.name, sensitive=dataset.sensitive, split_seed=split_seed,
                        feature_names=dataset.feature_names)
    partial.replace(out)
    result.history.to_csv(out.with_suffix(".history.csv"), index=False)


def train_policy(dataset, config: MetaConfig, out, *, split_seed: int = 0,
                 progress: Callable[[int, dict], None] | None = None,
                 stage: Callable[[str], None] | None = None) -> MetaTrainingResult:
    """Meta-train a PANDA policy for ``dataset`` and write it to ``out`` (plus ``<out>.history.csv``).

    The one pipeline behind ``python -m fairal train-policy`` and the app's background jobs:
    :func:`prepare_meta_training`, :func:`meta_train` on the meta-train half, :func:`write_policy`.
    ``progress(iteration, row)`` follows each iteration, ``stage(message)`` each step before it.
    """
    data = prepare_meta_training(dataset, config, split_seed=split_seed, stage=stage)
    if stage is not None:
        stage(f"meta-training ({config.iterations} iterations)")
    result = meta_train(data.features, data.y, data.group_codes, data.n_groups, config=config, progress=progress)
    write_policy(out, result, data, dataset, config=config, split_seed=split_seed)
    return result
