"""Array conversion shared by the metric modules."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor on any device, or sequence) as a numpy array."""
    # Duck-typed so that importing this module does not import torch.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
