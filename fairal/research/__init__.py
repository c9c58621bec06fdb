"""Research tools, run offline and never by the live service.

* :mod:`fairal.research.simulate`: oracle-label runs of methods × seeds × budgets (``python -m
  fairal simulate``), through the same training step as the app (:mod:`fairal.trainers.training`).
* :mod:`fairal.research.methods`: the named (strategy, trainer) pairs a simulation runs.
* :mod:`fairal.research.poisoning`: FR-Train's label flipping and FORML's corruption to one class.

The app reads a simulation's CSV only to overlay it on the Curves page.
"""
