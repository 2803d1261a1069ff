"""Distributed sweeps: the same result files from a local Ray instance, a local process pool and this
process, for the same seeds; resuming skips what any executor already wrote."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from unicon_bench.errors import ConfigError
from unicon_bench.sweep.executors import ExecutorConfig, run_jobs
from unicon_bench.results import find_results, read_result


def results_by_run(folder) -> dict:
    found = {}
    for path in find_results(folder):
        r = read_result(path)
        found[(r.strategy.name, r.seed)] = r
    return found


@pytest.mark.slow
def test_ray_sweep_gives_the_same_results_as_local(cli, quick_run, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "tiny", "strategies": ["naive"], "scenarios": ["ct_to_pet"],
                                     "seeds": [0, 1], "quick": True, "out": "unused"}))
    ray = cli("sweep", suite, "--out", tmp_path / "ray", "--executor", "ray", "--workers", "2", "--no-progress",
              cwd=tmp_path, timeout=600)
    assert ray.returncode == 0, ray.stderr
    assert "2 ran, 0 already done" in ray.stdout
    pool = cli("sweep", suite, "--out", tmp_path / "pool", "--executor", "local", "--workers", "2", "--no-progress",
               cwd=tmp_path, timeout=600)
    assert pool.returncode == 0, pool.stderr
    by_ray, by_pool = results_by_run(tmp_path / "ray"), results_by_run(tmp_path / "pool")
    assert set(by_ray) == set(by_pool) == {("naive", 0), ("naive", 1)}
    for key, r in by_ray.items():
        here, _path = quick_run("naive", "ct_to_pet", seed=key[1])  # the same run in this process, one thread
        for other in (by_pool[key], here):
            assert r.matrix == other.matrix and r.summary == other.summary
            assert r.strategy.params == other.strategy.params and r.env.threads == other.env.threads == 1
    assert by_ray[("naive", 0)].matrix != by_ray[("naive", 1)].matrix  # the seeds differ: the check has teeth

    again = cli("sweep", suite, "--out", tmp_path / "ray", "--executor", "ray", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0 and "0 ran, 2 already done" in again.stdout
    assert len(find_results(tmp_path / "ray")) == 2


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed\nsecond line")
    return x * x


def test_local_pool_runs_every_job_and_isolates_a_failure():
    outcomes = {}
    run_jobs(_square, [1, 2, 3, 4], ExecutorConfig("local", workers=2), lambda o: outcomes.__setitem__(o.index, o))
    assert {i: o.value for i, o in outcomes.items() if o.error is None} == {0: 1, 1: 4, 3: 16}
    assert outcomes[2].error == "ValueError: three is not allowed second line" and "Traceback" in outcomes[2].trace


def test_executor_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown executor"):
        ExecutorConfig("dask")
    with pytest.raises(ConfigError, match="at least 1"):
        ExecutorConfig("local", workers=0)
    with pytest.raises(ConfigError, match="--address is for --executor ray"):
        ExecutorConfig("local", address="auto")
    assert ExecutorConfig().in_process and not ExecutorConfig("local", workers=2).in_process
    assert not ExecutorConfig("ray", workers=1).in_process


@pytest.mark.slow
def test_tune_trials_as_ray_tasks_score_like_trials_in_this_process(phantom_cache, tmp_path, torch_one_thread):
    from unicon_bench import tune

    settings = [{"lr": 0.003, "weight_decay": 0.0}, {"lr": 0.0003, "weight_decay": 1e-4}]
    values = {}
    for kind, workers in (("local", 1), ("ray", 2)):
        spec = tune.build_spec("naive", "ct_to_pet", quick=True, out=tmp_path / kind, fixed={"epochs": "1"},
                               pruning=False, cache_dir=phantom_cache)
        study = tune.open_study(spec)
        for params in settings:
            study.enqueue_trial(params)
        report = tune.run_tuning(spec, trials=2, executor=ExecutorConfig(kind, workers=workers, threads=1),
                                 out=tmp_path / kind)
        assert report.ran == 2 and not report.failed
        values[kind] = {(t.params["lr"], t.params["weight_decay"]): (t.value, t.user_attrs["worker"])
                        for t in study.trials}
    assert set(values["ray"]) == set(values["local"]) == {(s["lr"], s["weight_decay"]) for s in settings}
    for key, (value, _worker) in values["local"].items():
        assert values["ray"][key][0] == value  # the same validation score, trained in a Ray worker
    assert {w.split(":")[1] for _v, w in values["local"].values()} == {str(os.getpid())}
    assert str(os.getpid()) not in {w.split(":")[1] for _v, w in values["ray"].values()}


def _nap(item) -> int:
    folder, i = item
    (folder / f"start{i}").touch()
    time.sleep(20)
    (folder / f"done{i}").touch()
    return i


def test_interrupting_a_pool_stops_queued_and_running_jobs(tmp_path):
    # Ctrl-C used to leave the pool's `with` block waiting for every queued job: the sweep ran on
    def interrupt(running: int) -> None:
        if any(tmp_path.glob("start*")):
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_jobs(_nap, [(tmp_path, i) for i in range(6)], ExecutorConfig("local", workers=2), lambda o: None,
                 on_tick=interrupt)
    assert time.monotonic() - started < 20  # did not wait for a single 20 s job
    time.sleep(1)
    assert not list(tmp_path.glob("done*"))  # the running jobs were ended
    assert 1 <= len(list(tmp_path.glob("start*"))) <= 2  # and the queued ones never started
    assert not multiprocessing.active_children()


def _group_members(pgid: int) -> list[int]:
    """Live processes of a process group (from /proc: field 5 of /proc/PID/stat is the group)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z" and int(stat.parent.name) != os.getpid():
            members.append(int(stat.parent.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_stops_a_pool_sweep_and_its_workers(tmp_path, phantom_cache):
    # A sweep started in the background by a script ignores SIGINT; SIGTERM used to kill the driver
    # alone, leaving its pool workers to finish their runs. Now it is the same clean stop as Ctrl-C.
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "long", "strategies": ["naive", "ewc", "replay", "unicon"],
                                     "scenarios": ["ct_to_pet"], "seeds": [0, 1, 2], "quick": True,
                                     "out": str(tmp_path / "results")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNICON_BENCH_CACHE": str(phantom_cache)}
    proc = subprocess.Popen([sys.executable, "-m", "unicon_bench.cli", "sweep", str(suite), "--workers", "2",
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_group_members(proc.pid)) < 4 and time.monotonic() < deadline:  # driver, tracker, 2 workers
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        time.sleep(3)  # the workers are inside their first runs
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "sweep terminated" in err and "run the same command again" in err
    time.sleep(1)
    assert _group_members(proc.pid) == []  # no worker left running the rest of the suite
    assert len(list((tmp_path / "results").rglob("*.json"))) < 12
