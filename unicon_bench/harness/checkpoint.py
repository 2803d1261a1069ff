"""Checkpoints: a killed run resumes from its last finished experience to the same final matrix.

After every experience the harness saves, in ``<out>/<scenario>/<strategy>/checkpoints/``, the
strategy's state (model, trainable flags, optimizer, replay buffers, EWC importances, whatever else
``Strategy.state_dict`` holds), the random number generators (Python, NumPy, torch) and the run's
progress (scores so far, timings, run id). The file is written atomically (temporary file + rename)
and read with ``torch.load(weights_only=True)``: it holds tensors and plain containers only, so
loading one runs no code.

Files are named ``<key>-<run id>.pt``; the key hashes what makes two runs the same run (scenario
content, strategy, parameters, seed, quick flag), so resuming only ever picks up a checkpoint of
exactly this run. A live run holds an exclusive ``flock`` on ``<key>-<run id>.lock``; the kernel drops
it when the process dies, even by SIGKILL, so a resume never takes over a run still going and two
resumers never take the same checkpoint. The checkpoint and its lock are deleted once the result
file is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from unicon_bench.errors import CheckpointError
from unicon_bench.fileio import SAFE_NAME, atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not protected from each other
    fcntl = None

FORMAT = 2  # 2: the progress keeps the evaluated rows only (format 1 also kept their primary values)
Resume = bool | Literal["auto"]


@dataclass
class Progress:
    """What the harness has computed so far: ``rows`` holds the untrained model's evaluation, then one per
    finished experience (every metric, as plain dicts)."""

    run_id: str
    started: str
    trainable: list[int] = field(default_factory=list)
    train_time: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # wall time of the earlier, interrupted attempts
    peak_rss_mb: float = 0.0
    resumed_after: list[int] = field(default_factory=list)  # experiences done at each resume
    rows: list = field(default_factory=list)
    eval_time_s: float = 0.0

    @property
    def experiences_done(self) -> int:
        return max(len(self.rows) - 1, 0)


RUN_ID = re.compile(SAFE_NAME)  # run ids name files: no separators, no ".."


def _progress(raw: Any, path: Path, key: str, n_experiences: int) -> Progress:
    """The progress record of a checkpoint, checked: its run id names this very file, and it holds at
    most one evaluated row per experience (plus the untrained one) with one cost entry per experience."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path} has a malformed progress record ({why}); "
                               "delete it to start the run afresh")

    if not isinstance(raw, dict):
        raise bad("not a mapping")
    try:
        progress = Progress(**raw)
    except TypeError as exc:
        raise bad(str(exc)) from None
    run_id = progress.run_id
    if not isinstance(run_id, str) or not RUN_ID.match(run_id) or path.name != f"{key}-{run_id}.pt":
        raise bad(f"run id {run_id!r} is not the one its file name gives")
    lists = {"rows": progress.rows, "trainable": progress.trainable, "train_time": progress.train_time,
             "resumed_after": progress.resumed_after}
    if not all(isinstance(v, list) for v in lists.values()):
        raise bad("rows, trainable, train_time and resumed_after must be lists")
    done = progress.experiences_done
    if not 1 <= done <= n_experiences or len(progress.trainable) != done or len(progress.train_time) != done:
        raise bad(f"{len(progress.rows)} evaluated rows and {len(progress.trainable)} cost entries for a "
                  f"scenario of {n_experiences} experiences")
    return progress


def run_key(spec, strategy: str, params: dict, seed: int, quick: bool, precision: str = "fp32") -> str:
    """A short hash of everything that makes two runs the same run."""
    identity = {"scenario": spec.model_dump(mode="json"), "strategy": strategy, "params": params,
                "seed": seed, "quick": quick, "precision": precision}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lock_file(path: Path) -> int | None:
    """An exclusive lock on ``path`` (created if needed): its descriptor, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _holder(path: Path) -> str:
    try:
        return f"process {path.read_text().strip()}"
    except OSError:
        return "another process"


def load_file(path: Path) -> dict[str, Any]:
    """Read a checkpoint file safely; any problem is one ``CheckpointError``."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a unicon-bench checkpoint ({reason}); "
                              "delete it to start the run afresh") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not {"key", "progress", "strategy", "rng"} <= set(payload):
        raise CheckpointError(f"checkpoint {path} is not a unicon-bench checkpoint of format {FORMAT}; "
                              "delete it to start the run afresh")
    return payload


class RunCheckpoint:
    """The checkpoint file of one run, and the lock that marks the run as live while it is held."""

    def __init__(self, folder: Path, key: str, progress: Progress, lock_fd: int | None, enabled: bool = True):
        self.folder, self.key, self.progress, self._fd = folder, key, progress, lock_fd
        self.enabled = enabled  # False: a run that keeps no checkpoint (e.g. a tuning trial)
        self._pending: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}-{self.progress.run_id}.pt"

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    @classmethod
    def open(cls, out: str | Path, spec, strategy: str, params: dict, seed: int, quick: bool,
             resume: Resume, new_progress, enabled: bool = True, precision: str = "fp32") -> "RunCheckpoint":
        """Claim the latest resumable checkpoint of this run, or start a new run (``new_progress()``).

        ``resume``: False starts a new run; True resumes and fails with a ``CheckpointError`` if there
        is nothing to resume; ``"auto"`` resumes if it can and starts a new run otherwise.
        ``enabled=False``: a new run that saves no checkpoints (``resume`` must be False).
        """
        folder = Path(out) / spec.name / strategy / "checkpoints"
        key = run_key(spec, strategy, params, seed, quick, precision)
        if not enabled:
            if resume:
                raise CheckpointError("cannot resume a run without checkpoints")
            return cls(folder, key, new_progress(), None, enabled=False)
        if resume:
            claimed = cls._claim(folder, key, len(spec.experiences))
            if claimed is not None:
                return claimed
            if resume is True:
                busy = sorted(folder.glob(f"{key}-*.lock"))
                what = f"{strategy} on {spec.name} (seed {seed}{', quick' if quick else ''})"
                if any(p.with_suffix(".pt").exists() for p in busy):
                    raise CheckpointError(f"the checkpoint of {what} in {folder} belongs to a run still in progress "
                                          f"({_holder(busy[0])}); wait for it or stop it first")
                raise CheckpointError(f"no checkpoint to resume for {what} in {folder} (a run killed before its "
                                      "first experience finished leaves none); run it without --resume")
        # a fresh run id: nobody else can want its lock before its first checkpoint exists, so the
        # folder and lock are made by the first save (a run failing before that leaves nothing)
        return cls(folder, key, new_progress(), None)

    @classmethod
    def _claim(cls, folder: Path, key: str, n_experiences: int) -> "RunCheckpoint | None":
        candidates = sorted(folder.glob(f"{key}-*.pt"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
        for path in candidates:
            fd = lock_file(path.with_suffix(".lock"))
            if fd is None:
                continue  # a live run
            try:
                payload = load_file(path)
            except CheckpointError:
                os.close(fd)
                if not path.exists():  # finished and removed while we looked
                    continue
                raise
            if payload["key"] != key:
                os.close(fd)
                raise CheckpointError(f"checkpoint {path} belongs to another run configuration (key "
                                      f"{payload['key']}); delete it to start the run afresh")
            try:
                progress = _progress(payload["progress"], path, key, n_experiences)
            except CheckpointError:
                os.close(fd)
                raise
            progress.resumed_after.append(progress.experiences_done)
            ckpt = cls(folder, key, progress, fd)
            ckpt._pending = payload
            return ckpt
        return None

    def restore(self, strategy) -> bool:
        """Load the claimed checkpoint into a freshly built ``strategy``, then the RNG states.

        Returns False (nothing done) for a new run. Call it after everything that draws random
        numbers at start-up (model construction), right before the loop continues.
        """
        if self._pending is None:
            return False
        from unicon_bench.strategy import state

        payload, self._pending = self._pending, None
        try:
            strategy.load_state_dict(payload["strategy"])
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - a mismatch shows up as many kinds of error
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise CheckpointError(f"checkpoint {self.path} does not fit this strategy ({reason}); "
                                  "delete it to start the run afresh") from None
        try:
            state.set_rng_state(payload["rng"])
        except Exception as exc:  # noqa: BLE001 - a malformed generator state fails in many ways
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise CheckpointError(f"checkpoint {self.path} has a malformed random-generator state ({reason}); "
                                  "delete it to start the run afresh") from None
        return True

    def save(self, strategy, elapsed_s: float) -> bool:
        """Write the strategy state, the RNG states and the progress (atomically); False if unsupported.

        ``elapsed_s``: wall time of this attempt so far (earlier attempts' time is added).
        """
        import torch

        from unicon_bench.strategy import state

        strategy_state = strategy.state_dict() if self.enabled else None
        if strategy_state is None:
            return False
        payload = {"format": FORMAT, "key": self.key, "progress": {**dataclasses.asdict(self.progress), "elapsed_s": self.progress.elapsed_s + elapsed_s},
                   "strategy": strategy_state, "rng": state.rng_state()}
        buf = io.BytesIO()
        torch.save(payload, buf)
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = lock_file(self.lock_path)
            if self._fd is None:
                raise CheckpointError(f"{self.lock_path} is held by {_holder(self.lock_path)}: two runs with one run id")
        atomic_write(self.path, lambda f: f.write(buf.getbuffer()))
        return True

    def close(self, finished: bool) -> None:
        """Release the lock; once the run has finished (or failed before any checkpoint), delete its files."""
        if not self.enabled or self._fd is None:
            return  # no checkpoint was ever written
        finished = finished or not self.path.exists()  # nothing to resume: leave nothing behind
        if finished:
            self.path.unlink(missing_ok=True)
            for tmp in self.folder.glob(f".{self.path.name}.*.tmp"):  # left by a kill mid-write
                tmp.unlink(missing_ok=True)
            self.lock_path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if finished:
            try:
                self.folder.rmdir()  # only if no other run's checkpoint is left
            except OSError:
                pass
