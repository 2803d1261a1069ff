"""A shared Optuna study on a real PostgreSQL server: a throwaway cluster (initdb + pg_ctl on a free
loopback port), a `tune` process and this process adding trials to one study at the same time.

PostgreSQL refuses to run as root, so as root (CI) the cluster runs as the `postgres` user (or
`nobody`) through runuser. Skipped only when the server binaries are missing (`apt-get install
postgresql`, done by .ci/run)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import SUBPROCESS_THREADS, _cli_prefix


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    bin_dir = _server_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run does)")
    prefix: list[str] = []
    root = tempfile.mkdtemp(prefix="unicon-pg-")
    if os.geteuid() == 0:  # postgres will not run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or shutil.which("runuser") is None:
            pytest.skip("running as root without a postgres/nobody user or runuser to start PostgreSQL as")
        shutil.chown(root, user)
        prefix = ["runuser", "-u", user, "--"]
    data, port = Path(root) / "data", _free_port()
    subprocess.run(prefix + [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", f"{root}/log", "-w",
                             "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.mark.slow
def test_two_processes_share_a_postgresql_study(postgres_url, phantom_cache, tmp_path, torch_one_thread):
    import optuna

    from unicon_bench import tune

    args = ["tune", "-s", "naive", "-c", "ct_to_pet", "--quick", "--trials", "1", "--set", "epochs=1",
            "--no-pruning", "--study-name", "lab", "--storage", postgres_url, "--out", str(tmp_path / "cli"),
            "--no-progress"]
    env = {**os.environ, **SUBPROCESS_THREADS, "UNICON_BENCH_CACHE": str(phantom_cache)}
    other = subprocess.Popen(_cli_prefix() + args, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    spec = tune.build_spec("naive", "ct_to_pet", quick=True, storage=postgres_url, study_name="lab",
                           fixed={"epochs": "1"}, pruning=False, cache_dir=phantom_cache, out=tmp_path / "here")
    report = tune.run_tuning(spec, trials=1, out=tmp_path / "here")
    _out, err = other.communicate(timeout=600)
    assert other.returncode == 0, err

    trials = optuna.load_study(study_name="lab", storage=postgres_url).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert {t.user_attrs["worker"].split(":")[1] for t in trials} == {str(os.getpid()), str(other.pid)}
    assert report.ran == 1 and report.best_params is not None
    import yaml

    tuning = yaml.safe_load(report.best_params.read_text())["tuning"]
    assert tuning["storage"] == "postgresql" and tuning["study"] == "lab"
