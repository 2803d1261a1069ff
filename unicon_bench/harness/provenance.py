"""Where a result came from: the seeding that makes a run reproducible, and the environment (package
versions, git commit, threads, device) that the result file records beside it."""

from __future__ import annotations

import os
import platform
import random
import resource
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np


def _import_rng_consumers() -> None:
    """Import, before seeding, the libraries whose import draws from a global generator (``rich.style``
    draws from Python's ``random`` at import, and scikit-learn imports rich). Imported lazily by the
    first run of a process only, they shifted that run's Python stream: A-GEM's memory (``random.shuffle``)
    then depended on which job a worker had run before. Imported here, every run starts alike."""
    import rich.style  # noqa: F401
    import sklearn.metrics  # noqa: F401


def seed_everything(seed: int) -> None:
    """Seed every RNG the run touches and ask torch for deterministic kernels."""
    import torch

    _import_rng_consumers()
    # cuBLAS needs this before CUDA starts to run its GEMMs deterministically (no effect on CPU)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def determinism(seed: int) -> dict[str, Any]:
    """The seed and the settings that make a run reproducible, as the result records them."""
    import torch

    return {
        "seed": seed,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "intra_op_threads": torch.get_num_threads(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def git_commit() -> str | None:
    """The commit of the installed source tree, ``+dirty`` with uncommitted changes; None outside git."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def environment(device: str, seed: int | None = None, precision: str | None = None) -> dict[str, Any]:
    """The result's ``env``: versions, commit, platform, device, threads (and the determinism settings)."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "avalanche": package_version("avalanche-lib"),
        "monai": package_version("monai"),
        "unicon_bench": package_version("unicon-bench"),
        "git_commit": git_commit(),
        "platform": f"{platform.system()} {platform.machine()}",
        "device": device,
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        **({} if seed is None else {"determinism": determinism(seed)}),
        **({} if precision is None else {"precision": precision}),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
