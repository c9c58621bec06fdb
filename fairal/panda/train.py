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
from fairal.device import default_device
from fairal.panda.config import MetaConfig  # re-exported: fairal.panda.train.MetaConfig
from fairal.panda.inner import head_logits, init_head, train_head
from fairal.panda.policy import SetTransformerPolicy, load_policy, save_policy
from fairal.panda.relaxed_topk import gumbel_top_b, relaxed_top_b, sample_gumbel
from fairal.representation import Representation

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
    """Draws disjoint (seed, pool, validation) index triples from D."""

    def __init__(self, n: int, y: np.ndarray, config: MetaConfig, rng: np.random.Generator):
        need = config.n_initial + config.pool_size + config.validation_size
        if need > n:
            raise ValueError(f"a task needs {need} rows (n_initial + pool_size + validation_size), "
                             f"but the meta-train data has {n}")
        if config.budget > config.pool_size:
            raise ValueError(f"budget ({config.budget}) is larger than the task pool ({config.pool_size})")
        self.n, self.y, self.config, self.rng = n, y, config, rng

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


def proximal_step(policy: torch.nn.Module, disparity_fn: Callable[[], torch.Tensor], *, rho: float,
                  step_size: float, steps: int) -> int:
    """Approximate prox: argmin_θ η·χ̃(θ) + ½‖θ − θ̂‖² by a few gradient steps from θ̂ (the current θ).

    χ̃ = disparity when it exceeds ρ, else 0 (then we stop: the constraint
    holds). Each step moves θ by ``step_size`` along the normalised disparity
    gradient plus ``step_size·(θ − θ̂)`` back towards θ̂. Returns the number of
    steps taken.
    """
    params = list(policy.parameters())
    anchor = [p.detach().clone() for p in params]
    taken = 0
    for _ in range(steps):
        disparity = disparity_fn()
        if float(disparity.detach()) <= rho:
            break
        grads = torch.autograd.grad(disparity, params, allow_unused=True)
        norm = torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.tensor(0.0)))
        if not torch.isfinite(norm) or norm == 0:
            break
        with torch.no_grad():
            for p, g, a in zip(params, grads, anchor):
                step = (step_size * g / norm) if g is not None else 0.0
                p.sub_(step + step_size * (p - a))
        taken += 1
    return taken


def meta_train(features: np.ndarray, y: np.ndarray, group_codes: np.ndarray, n_groups: int, *,
               config: MetaConfig | None = None,
               progress: Callable[[int, dict], None] | None = None) -> MetaTrainingResult:
    """Meta-train a selection policy on D = (features, y, group_codes); see the module docstring."""
    config = config or MetaConfig()
    start_time = time.perf_counter()
    device = default_device()
    c = config
    rng = np.random.default_rng(c.seed)
    generator = torch.Generator().manual_seed(c.seed)
    F_all = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    inputs_all = torch.as_tensor(policy_inputs(features, group_codes, n_groups), device=device)
    y_all = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=device)
    g_all = torch.as_tensor(np.asarray(group_codes), dtype=torch.int64, device=device)
    tasks = _Tasks(len(y_all), np.asarray(y), c, rng)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(c.seed)
        policy = SetTransformerPolicy(inputs_all.shape[1], width=c.width, layers=c.layers, heads=c.heads,
                                      temperature=c.temperature,
                                      inducing_points=c.inducing_points or None).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=c.lr)
    k = F_all.shape[1]

    def learner(seed, pool, weights):
        feats = torch.cat([F_all[seed], F_all[pool]])
        labels = torch.cat([y_all[seed], y_all[pool]])
        w = torch.cat([torch.ones(len(seed), device=device), weights])
        return train_head(init_head(k, device=device), feats, labels, w,
                          steps=c.inner_steps, lr=c.inner_lr, l2=c.inner_l2)

    def simulate_task(seed, pool, val, gumbel):
        logits = policy(inputs_all[pool])
        tau = policy.temperature.clamp(c.min_temperature, c.max_temperature)
        weights = relaxed_top_b(logits, c.budget, temperature=tau, gumbel=gumbel)
        params = learner(seed, pool, weights)
        val_logits = head_logits(params, F_all[val])
        loss = F.binary_cross_entropy_with_logits(val_logits, y_all[val])
        disparity = metrics.soft_demographic_parity(torch.sigmoid(val_logits), g_all[val], method=c.disparity)
        return loss, disparity

    eval_tasks = [(*tasks.draw(), sample_gumbel((c.pool_size,), generator=generator).to(device))
                  for _ in range(c.eval_tasks)]

    @torch.no_grad()
    def evaluate(picker) -> dict:
        f1s, dps, positives = [], [], []
        for seed, pool, val, gumbel in eval_tasks:
            chosen = picker(pool, gumbel)
            weights = torch.zeros(len(pool), device=device)
            weights[chosen] = 1.0
            with torch.enable_grad():  # train_head differentiates its own loss
                params = learner(seed, pool, weights)
            predicted = (head_logits(params, F_all[val]) > 0).long().cpu().numpy()
            truth, groups = y_all[val].long().cpu().numpy(), g_all[val].cpu().numpy()
            f1s.append(metrics.f1(truth, predicted))
            dps.append(metrics.demographic_parity_difference(truth, predicted, sensitive_features=groups,
                                                             method=cast(metrics.Method, c.disparity)))
            positives.append(float(y_all[pool][chosen].mean()))
        return {"eval_f1": float(np.mean(f1s)), "eval_disparity": float(np.mean(dps)),
                "eval_positive_share": float(np.mean(positives))}

    def policy_picker(pool, gumbel):
        return gumbel_top_b(policy(inputs_all[pool]), c.budget, gumbel=gumbel)

    def random_picker(pool, gumbel):
        return gumbel_top_b(torch.zeros(len(pool), device=device), c.budget, gumbel=gumbel)

    baseline = evaluate(random_picker)
    best: dict[str, Any] | None
    best_state: dict[str, torch.Tensor] | None
    history, best, best_state = [], None, None
    for iteration in range(1, c.iterations + 1):
        policy.train()
        seed, pool, val = tasks.draw()
        gumbel = sample_gumbel((c.pool_size,), generator=generator).to(device)
        # Forward step: gradient of the validation loss through the unrolled learner.
        loss, disparity = simulate_task(seed, pool, val, gumbel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # project τ back into its box (a clamp alone would freeze it outside)
            policy.log_temperature.clamp_(np.log(c.min_temperature), np.log(c.max_temperature))
        # Backward (proximal) step on η·χ̃ + ½‖θ − θ̂‖², same task and noise.
        prox_taken = proximal_step(policy, lambda: simulate_task(seed, pool, val, gumbel)[1],  # noqa: B023 (used now)
                                   rho=c.rho, step_size=c.prox_lr, steps=c.prox_steps)
        row = {"iteration": iteration, "val_loss": float(loss.detach()),
               "val_soft_disparity": float(disparity.detach()),
               "temperature": float(policy.temperature.detach()), "prox_steps": prox_taken}
        if iteration % c.eval_every == 0 or iteration == c.iterations:
            policy.eval()
            row.update(evaluate(policy_picker))
            feasible = row["eval_disparity"] <= c.rho
            key = (feasible, row["eval_f1"] if feasible else -row["eval_disparity"])
            if best is None or key > best["key"]:
                best = {"key": key, "iteration": iteration, **{k: row[k] for k in row if k.startswith("eval_")}}
                best_state = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        history.append(row)
        if progress is not None:
            progress(iteration, row)
    # set by the evaluation at the last iteration (None only when c.iterations < 1)
    policy.load_state_dict(cast(dict[str, torch.Tensor], best_state))
    policy.eval()
    best = {k: v for k, v in cast(dict[str, Any], best).items() if k != "key"}
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

    ``feature_names`` (the columns of the data's ``X``) let :func:`fairal.strategies.panda.policy_misfit`
    recognise the same data under another file name.
    """
    save_policy(result.policy, path, metadata={
        "dataset": dataset, "sensitive": sensitive, "split_seed": split_seed,
        "group_names": [str(g) for g in group_names], "config": asdict(config),
        **({"feature_names": [str(f) for f in feature_names]} if feature_names is not None else {}),
        "learner": {"steps": config.inner_steps, "lr": config.inner_lr, "l2": config.inner_l2},
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
    from fairal.representation import pretrain_representation

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
