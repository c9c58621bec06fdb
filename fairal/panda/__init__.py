"""PANDA building blocks (Sharaf, Daumé & Ni, FAccT 2022).

* :mod:`fairal.panda.policy` — :class:`SetTransformerPolicy` (one logit per
  pool item, permutation-equivariant, learned Gumbel temperature) and its files.
* :mod:`fairal.panda.relaxed_topk` — Gumbel-top-B sampling (hard) and the
  sigmoid-threshold relaxation with exact implicit gradients.
* :mod:`fairal.panda.inner` — the unrolled inner learner (ACTIVELEARNSIM's
  classifier training) as a pure torch.func-style function.
"""

from fairal.panda.inner import head_logits, head_loss, init_head, train_head
from fairal.panda.policy import PolicyFileError, SetTransformerPolicy, load_policy, save_policy
from fairal.panda.relaxed_topk import (
    gumbel_top_b,
    relaxed_top_b,
    sample_gumbel,
    straight_through_top_b,
)

__all__ = [
    "SetTransformerPolicy",
    "PolicyFileError",
    "save_policy",
    "load_policy",
    "sample_gumbel",
    "gumbel_top_b",
    "relaxed_top_b",
    "straight_through_top_b",
    "init_head",
    "head_logits",
    "head_loss",
    "train_head",
]
