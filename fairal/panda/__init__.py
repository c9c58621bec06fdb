"""PANDA building blocks (Sharaf, Daumé & Ni, FAccT 2022).

* :mod:`fairal.panda.policy` — :class:`SetTransformerPolicy` (one logit per
  pool item, permutation-equivariant, learned Gumbel temperature) and its files.
* :mod:`fairal.panda.relaxed_topk` — Gumbel-top-B sampling (hard) and the
  sigmoid-threshold relaxation with exact implicit gradients.
* :mod:`fairal.panda.inner` — the unrolled inner learner (ACTIVELEARNSIM's
  classifier training) as a pure torch.func-style function.
* :mod:`fairal.panda.config` — :class:`MetaConfig`, meta-training's hyperparameters (no torch).
* :mod:`fairal.panda.train`, :mod:`fairal.panda.tuning` — meta-training and its hyperparameter search.
* :mod:`fairal.panda.representation` — the MLP pretrained on D0 whose last hidden layer every
  strategy and learner of a PANDA project reads.
* :mod:`fairal.panda.strategy` — :class:`PandaSampling`, registered in :mod:`fairal.strategies` as "panda".
* :mod:`fairal.panda.head` — :class:`HeadTrainer`, the few-step linear head PANDA is meta-trained
  through, registered in :mod:`fairal.trainers` as "head".
"""

import importlib

#: Where each name lives; loaded on first use, so that ``fairal.panda.config`` imports without torch.
_HOMES = {
    "SetTransformerPolicy": "policy", "PolicyFileError": "policy", "save_policy": "policy",
    "load_policy": "policy", "sample_gumbel": "relaxed_topk", "gumbel_top_b": "relaxed_topk",
    "relaxed_top_b": "relaxed_topk", "straight_through_top_b": "relaxed_topk", "init_head": "inner",
    "head_logits": "inner", "head_loss": "inner", "train_head": "inner",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
