"""Evaluation metrics: the primary ones (Dice, ROC AUC, Harrell's C-index), the ones recorded beside
them (``registry``: boundary, lesion-wise, calibration and time-dependent survival metrics) and the
continual-learning summaries.

Heavy backends (torch, MONAI, scikit-learn, torchsurv) are imported inside the
functions, so importing this package is cheap.
"""

from unicon_bench.metrics import continual, registry
from unicon_bench.metrics.classification import roc_auc
from unicon_bench.metrics.segmentation import DiceAccumulator, dice
from unicon_bench.metrics.survival import c_index

__all__ = ["DiceAccumulator", "c_index", "continual", "dice", "registry", "roc_auc"]
