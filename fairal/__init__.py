"""fairal: fair active labeling.

Decides which examples to label and trains models that stay fair while the
labels arrive. The library never imports Streamlit; ``app/`` is a thin UI on top.
"""

__version__ = "0.1.0"
