"""Executors: run many independent jobs (sweep runs, tuning trials) here or on a Ray cluster.

``local`` runs the jobs in this process one after the other (one worker, the default) or in a pool
of ``workers`` processes on this machine; ``ray`` submits one Ray task per job, each declaring the
CPUs (its intra-op threads) and GPUs it needs, to a local Ray instance or the cluster at ``address``.
Jobs are module-level functions of one picklable argument; a job that raises is reported as a
failure of that job only. Worker processes run each job with a fixed number of intra-op threads
(``OMP_NUM_THREADS``), so a run gives the same values whichever executor ran it.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Literal

from unicon_bench.errors import ConfigError, UniconBenchError

EXECUTORS = ("local", "ray")
TICK_S = 0.5  # how often the driver wakes up to refresh progress while jobs run


class ExecutorError(UniconBenchError):
    """Ray missing or unreachable, or an impossible executor setting."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where jobs run. ``workers``: pool size (local) or tasks in flight at most (ray; default: as
    many as the cluster schedules). ``threads``: intra-op threads of each job in a worker (default:
    ``$OMP_NUM_THREADS``, else 1). ``gpus``: GPUs each Ray task declares."""

    kind: Literal["local", "ray"] = "local"
    workers: int | None = None
    address: str | None = None
    threads: int | None = None
    gpus: float = 0.0

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ConfigError(f"unknown executor '{self.kind}'; available: {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.address and self.kind != "ray":
            raise ConfigError("--address is for --executor ray (the address of a Ray cluster)")

    @property
    def in_process(self) -> bool:
        """Jobs run in this very process (objects that cannot be pickled may ride along)."""
        return self.kind == "local" and (self.workers or 1) == 1

    def job_threads(self) -> int:
        if self.threads is not None:
            return max(1, self.threads)
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))


@dataclass
class Outcome:
    """What became of job ``index``: its return value, or a one-line error and a traceback."""

    index: int
    value: Any = None
    error: str | None = None
    trace: str | None = None


def one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def worker_env(threads: int) -> dict[str, str]:
    """Environment of worker processes: the thread count, and the phantom cache if one is set."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if os.environ.get("UNICON_BENCH_CACHE"):
        env["UNICON_BENCH_CACHE"] = os.environ["UNICON_BENCH_CACHE"]
    return env


def prepare_worker(threads: int, env: dict[str, str]) -> None:
    """Pin the intra-op threads of a worker process before any job runs in it."""
    os.environ.update(env)
    import torch

    torch.set_num_threads(threads)


def call_job(fn: Callable[[Any], Any], item: Any, threads: int, env: dict[str, str]) -> Any:
    """A job as a worker (pool process or Ray task) runs it."""
    prepare_worker(threads, env)
    return fn(item)


def _outcome(index: int, get: Callable[..., Any], *args: Any) -> Outcome:
    """``get(*args)`` as an Outcome: a job that raised (or whose worker died) fails alone."""
    try:
        return Outcome(index, value=get(*args))
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
        cause = getattr(exc, "cause", None)  # a RayTaskError wraps the task's own exception
        shown = cause if isinstance(cause, BaseException) else exc
        return Outcome(index, error=one_line(shown), trace="".join(traceback.format_exception(exc)))


def run_jobs(
    fn: Callable[[Any], Any],
    items: list[Any],
    config: ExecutorConfig,
    on_done: Callable[[Outcome], None],
    on_tick: Callable[[int], None] | None = None,
) -> None:
    """Run ``fn(item)`` for every item; ``on_done`` hears of each job as it ends (any order), and
    ``on_tick(running)`` is called every ``TICK_S`` seconds while pool or Ray jobs run."""
    if not items:
        return
    if config.in_process:
        for i, item in enumerate(items):
            on_done(_outcome(i, fn, item))
        return
    runner = _run_ray if config.kind == "ray" else _run_pool
    runner(fn, items, config, on_done, on_tick or (lambda running: None))


def _run_pool(fn, items, config: ExecutorConfig, on_done, on_tick) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = config.job_threads()
    env = worker_env(threads)
    # spawn, not fork: a forked copy of a process that already runs torch threads can deadlock.
    pool = ProcessPoolExecutor(max_workers=config.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=prepare_worker, initargs=(threads, env))
    pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
    try:
        while pending:
            done, _ = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(_outcome(pending.pop(future), future.result))
            on_tick(len(pending))
    except BaseException:
        # Ctrl-C (or a failing callback): stop now. A plain `with` block would wait for every job
        # still queued, i.e. run the rest of the sweep. Runs cut short resume from their checkpoints.
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def stop_pool(pool) -> None:
    """Drop a process pool's queued jobs and end the jobs it runs."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=10)


def init_ray(config: ExecutorConfig, threads: int) -> bool:
    """Connect to the cluster at ``config.address`` or start a local instance; True if started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from offline machines
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray: pip install 'unicon-bench[ray]' (or pip install ray)") from None
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "runtime_env": {"env_vars": worker_env(threads)}}
    if config.address is None:  # a new local instance: no dashboard, sized to the workers asked for
        kwargs["include_dashboard"] = False
        if config.workers is not None:
            kwargs["num_cpus"] = config.workers * threads
    try:
        # "local": always a new instance, never a cluster that happens to run here (or a stale record of one)
        ray.init(address=config.address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ExecutorError(f"cannot start or reach Ray at {config.address or 'a new local instance'}: "
                            f"{one_line(exc)}") from None
    return True


def _run_ray(fn, items, config: ExecutorConfig, on_done, on_tick) -> None:
    import ray

    threads = config.job_threads()
    started = init_ray(config, threads)
    try:
        task = ray.remote(num_cpus=threads, num_gpus=config.gpus, max_retries=0)(call_job)
        env = worker_env(threads)
        todo = list(enumerate(items))
        limit = config.workers or len(items)
        pending: dict[Any, int] = {}
        while todo or pending:
            while todo and len(pending) < limit:
                i, item = todo.pop(0)
                pending[task.remote(fn, item, threads, env)] = i
            done, _ = ray.wait(list(pending), num_returns=1, timeout=TICK_S)
            for ref in done:
                on_done(_outcome(pending.pop(ref), ray.get, ref))
            on_tick(len(pending))
    except BaseException:
        for ref in pending:  # on a cluster, queued and running tasks would outlive the driver
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
