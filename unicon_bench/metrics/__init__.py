"""Evaluation metrics: Dice, ROC AUC, Harrell's C-index and continual-learning summaries.

Heavy backends (torch, MONAI, scikit-learn, torchsurv) are imported inside the
functions, so importing this package is cheap.
"""

from unicon_bench.metrics import continual
from unicon_bench.metrics.classification import roc_auc
from unicon_bench.metrics.segmentation import DiceAccumulator, dice
from unicon_bench.metrics.survival import c_index

__all__ = ["DiceAccumulator", "c_index", "continual", "dice", "roc_auc"]
