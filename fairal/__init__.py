"""fairal: fair active labeling.

Decides which examples to label and trains models that stay fair while the
labels arrive. The library never imports Streamlit; ``app/`` is a thin UI on top.

Where things are (README, "Layout" and "Architecture"):

* The live service, what the app and ``python -m fairal worker`` run: :mod:`fairal.store` (all
  SQL), :mod:`fairal.auth` (accounts, roles), :mod:`fairal.projects` (a project and its one
  training step), :mod:`fairal.labeling` (the labeling loop: next item, submit, skip, undo),
  :mod:`fairal.retrainer` (the background worker's retraining), :mod:`fairal.clean_set` (crowd
  answers into a project's clean validation set),
  :mod:`fairal.policy_jobs` (PANDA policies trained from Setup), :mod:`fairal.errors`.
* Building blocks both sides use: :mod:`fairal.datasets`, :mod:`fairal.metrics`,
  :mod:`fairal.trainers` (with the fitted model, :mod:`~fairal.trainers.models`, the device choice,
  :mod:`~fairal.trainers.device`, and fit-then-evaluate, :mod:`~fairal.trainers.training`),
  :mod:`fairal.strategies`, :mod:`fairal.crowd`.
* PANDA, all in :mod:`fairal.panda`: the policy, its meta-training and tuning, the strategy
  (:mod:`fairal.panda.strategy`, registered as "panda"), the pretrained representation
  (:mod:`fairal.panda.representation`) and the few-step head (:mod:`fairal.panda.head`,
  registered as trainer "head").
* Research tools, run offline, in :mod:`fairal.research`: :mod:`~fairal.research.simulate`,
  :mod:`~fairal.research.methods` and :mod:`~fairal.research.poisoning` (the app uses them only
  to offer and overlay simulated runs).
* Figures and forecasts, for the Curves page and the research tools alike: :mod:`fairal.plots`,
  :mod:`fairal.forecast`. :mod:`fairal.cli` is the command line of everything.
"""

__version__ = "0.1.0"
