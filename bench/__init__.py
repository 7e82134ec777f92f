"""Benchmark harness for fairness generalization in deepfake detection.

`python -m bench run` trains every registered method on every training domain and keeps per-sample
predictions; `python -m bench report` turns those predictions into metrics and leaderboards.
"""

__version__ = "0.1.0"
