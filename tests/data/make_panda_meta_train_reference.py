# Wrote panda_meta_train_m1_reference.json with the one-task-per-step meta_train of commit ed58989
# (before batched meta-training). tests/test_panda_batched.py checks that meta_batch=1 still gives these numbers.
# Run: PYTHONPATH=. python tests/data/make_panda_meta_train_reference.py tests/data/panda_meta_train_m1_reference.json
import json
import sys

import numpy as np
import torch

from fairal.panda.train import MetaConfig, meta_train

torch.set_num_threads(1)
rng = np.random.default_rng(7)
n, k = 900, 6
X = rng.normal(size=(n, k)).astype(np.float32)
g = (rng.random(n) < 0.4).astype(np.int64)
y = ((X[:, 0] + 0.8 * g + 0.3 * rng.normal(size=n)) > 0.3).astype(np.int64)
cfg = MetaConfig(budget=20, pool_size=200, validation_size=300, n_initial=10, inner_steps=10,
                 width=16, heads=2, iterations=6, eval_every=3, eval_tasks=2, rho=0.02, seed=3)
r = meta_train(X, y, g, 2, config=cfg)
out = {"history": r.history.to_dict(orient="list"),
       "state_sums": {k: float(v.double().sum()) for k, v in r.policy.state_dict().items()}}
json.dump(out, open(sys.argv[1], "w"), indent=1)
print(r.history)
