"""PANDA's meta-training hyperparameters, in a module without torch (the command line reads
their names and defaults for its help; :mod:`fairal.panda.train` uses them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetaConfig"]


@dataclass(frozen=True)
class MetaConfig:
    """Hyperparameters of meta-training (paper's search ranges in comments)."""

    budget: int = 400                 # B
    pool_size: int = 2000             # |L| per task (time per step grows with |L|)
    validation_size: int = 3000       # |V| per task
    n_initial: int = 50               # labeled seed per task (as in the app and simulate)
    rho: float = 0.04                 # constraint on the disparity
    disparity: str = "to_overall"     # demographic parity "to_overall" (PANDA Table 1) or "between_groups"
    inner_learner: str = "head"       # "head": inner_steps unrolled steps of a linear head (the paper's
                                      # ACTIVELEARNSIM); "erm": L2 logistic regression solved to convergence
                                      # (what the app's "erm" trainer deploys), implicit gradient
    inner_steps: int = 50             # unrolled gradient steps of the head ("head")
    inner_lr: float = 0.5             # ("head")
    inner_l2: float = 1e-3            # ("head")
    inner_C: float = 1.0              # inverse L2 strength of "erm", as ERMTrainer's and scikit-learn's C
    width: int = 32                   # {16, 32, 64}
    layers: int = 1                   # {1, 3, 5} searched in the paper; 1 is fastest and did as well here
    heads: int = 4
    inducing_points: int = 0          # 0: full self-attention (the paper); m > 0: ISAB extension, O(N·m)
    temperature: float = 0.3          # initial Gumbel temperature (1 … 1e-6), then learned
    min_temperature: float = 0.02     # learned τ is clamped to [min, max]: it drifts upwards otherwise
    max_temperature: float = 0.3      # (more spread weights = more data for the inner learner)
    lr: float = 1e-3                  # Adam, forward step (1e-2 … 1e-7)
    prox_steps: int = 3
    prox_lr: float = 0.05             # length of each normalised proximal step
    meta_batch: int = 1               # M: tasks per meta-step, batched through the policy and the learner
    bf16: bool = False                # run the policy's encoder under bfloat16 autocast (CUDA)
    iterations: int = 300
    eval_every: int = 20
    eval_tasks: int = 4
    seed: int = 0
