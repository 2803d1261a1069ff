"""Crash safety: a run SIGKILLed mid-experience resumes to the identical matrix; concurrent runs all land.

The killed runs are child processes that kill themselves (SIGKILL, no clean-up of any kind) at the
second training iteration of experience 2, through the harness's public progress callback. The
uninterrupted reference is the session's memoised quick run of the same strategy and seed; both use
one intra-op thread, so their matrices must match bit for bit.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import pytest
import torch

from unicon_bench import harness
from unicon_bench.harness import checkpoint
from unicon_bench.errors import CheckpointError
from unicon_bench.results import find_results, read_result

pytestmark = pytest.mark.slow

class KillMidExperience(harness.SilentReporter):
    """Progress callback that SIGKILLs its own process at the 2nd training iteration of experience 2."""

    current = ""

    def phase(self, description, total):
        self.current = description

    def advance(self, done, total, info=""):
        if self.current.startswith("train 2/") and done == 2:
            os.kill(os.getpid(), signal.SIGKILL)


def _child(strategy, scenario, out, cache, kill):
    torch.set_num_threads(1)
    reporter = KillMidExperience() if kill else None
    harness.run(strategy, scenario, seed=0, quick=True, out=out, cache_dir=cache, reporter=reporter)
    os._exit(3 if kill else 0)  # a killed run never gets here; skip the parent's (pytest's) exit handlers


def in_subprocesses(*jobs):
    """Run ``_child(*job)`` for each job in its own process, all at once; their exit codes.

    Processes are forked (torch is already imported here: a fresh interpreter per run would cost
    seconds of start-up each on a small machine); each is a separate process with its own memory.
    """
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=job) for job in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    return [p.exitcode for p in procs]


# every built-in strategy: each keeps its state across experiences in a different place (model,
# optimizer, Avalanche plugins, replay buffers, stored outputs, teachers, subspace memories, masks)
STRATEGIES = ["naive", "joint", "specialized", "ewc", "replay", "unicon", "medcoss", "lwf", "si", "mas", "rwalk",
              "der", "agem", "packnet", "seq_lora", "inflora", "l2p"]


@pytest.fixture(scope="module")
def killed(tmp_path_factory, phantom_cache, quick_run):
    """One results folder holding the checkpoints of four runs SIGKILLed during experience 2."""
    for strategy in STRATEGIES:
        quick_run(strategy, "ct_to_pet", seed=0)  # references first: the phantoms are cached by then
    out = tmp_path_factory.mktemp("killed")
    codes = in_subprocesses(*[(s, "ct_to_pet", out, phantom_cache, True) for s in STRATEGIES])
    assert codes == [-signal.SIGKILL] * len(STRATEGIES)
    return out


def _rows(result):
    return result.rows()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sigkilled_run_resumes_to_identical_matrix(strategy, killed, phantom_cache, quick_run, torch_one_thread):
    folder = killed / "ct_to_pet" / strategy / "checkpoints"
    (ckpt_file,) = folder.glob("*.pt")
    saved = checkpoint.load_file(ckpt_file)  # weights_only=True load of what the killed run left
    # killed after experience 1 finished, inside experience 2: the untrained row and experience 1's row
    assert len(saved["progress"]["rows"]) == 2
    assert not list(find_results(killed / "ct_to_pet" / strategy))  # and it wrote no result

    result, path = harness.run(strategy, "ct_to_pet", seed=0, quick=True, out=killed, cache_dir=phantom_cache,
                               resume=True)
    reference, _ = quick_run(strategy, "ct_to_pet", seed=0)
    assert _rows(result) == _rows(reference)  # exact, no tolerance
    assert result.summary == reference.summary
    assert result.cost.trainable_params == reference.cost.trainable_params
    assert result.cost.buffer_bytes == reference.cost.buffer_bytes
    assert result.run_id == saved["progress"]["run_id"] and result.resumed_after == [1]
    assert not reference.resumed_after
    assert read_result(path) == result
    assert not ckpt_file.exists() and not ckpt_file.with_suffix(".lock").exists()


def test_resume_without_checkpoint_is_one_clear_error(tmp_path, phantom_cache):
    with pytest.raises(CheckpointError, match="no checkpoint to resume for naive on ct_to_pet") as info:
        harness.run("naive", "ct_to_pet", seed=5, quick=True, out=tmp_path, cache_dir=phantom_cache, resume=True)
    assert "\n" not in str(info.value)
    assert not list(find_results(tmp_path))


def _cli(*args):
    from typer.testing import CliRunner

    from unicon_bench.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, [line for line in res.output.splitlines() if line.strip()]


def test_cli_resume_errors_then_success(tmp_path, phantom_cache, quick_run, torch_one_thread):
    assert in_subprocesses(("naive", "ct_to_pet", tmp_path, phantom_cache, True)) == [-signal.SIGKILL]
    (good,) = (tmp_path / "ct_to_pet" / "naive" / "checkpoints").glob("*.pt")
    intact = good.read_bytes()
    args = ["run", "-s", "naive", "-c", "ct_to_pet", "--quick", "--out", tmp_path, "--no-progress",
            "--cache-dir", phantom_cache]

    # truncated (a damaged disk; atomic writes never leave one) -> one line, exit 2, nothing written
    good.write_bytes(intact[: len(intact) // 2])
    code, lines = _cli(*args, "--resume")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: checkpoint") and "corrupt" in lines[0]
    assert not find_results(tmp_path / "ct_to_pet")

    # a run holding the lock is still alive: its checkpoint is not taken over
    good.write_bytes(intact)
    fd = checkpoint.lock_file(good.with_suffix(".lock"))
    try:
        code, lines = _cli(*args, "--resume")
    finally:
        os.close(fd)
    assert code == 2 and len(lines) == 1 and "still in progress" in lines[0], lines

    # another seed has no checkpoint
    code, lines = _cli(*args, "--seed", "7", "--resume")
    assert code == 2 and len(lines) == 1 and "no checkpoint to resume" in lines[0], lines

    # the intact checkpoint resumes to the uninterrupted run's matrix
    code, lines = _cli(*args, "--resume")
    assert code == 0, lines
    (path,) = find_results(tmp_path / "ct_to_pet")
    resumed = read_result(path)
    assert resumed.resumed_after == [1] and resumed.rows() == quick_run("naive", "ct_to_pet", seed=0)[0].rows()


class Gadget:
    """A class a malicious checkpoint could try to unpickle."""


def test_checkpoint_reader_refuses_objects_and_foreign_files(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "key": "k", "progress": {}, "strategy": Gadget(), "rng": {}},
               tmp_path / "object.pt")
    with pytest.raises(CheckpointError, match="corrupt or not a unicon-bench checkpoint"):
        checkpoint.load_file(tmp_path / "object.pt")  # weights_only=True: no arbitrary classes
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a unicon-bench checkpoint of format"):
        checkpoint.load_file(tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load_file(tmp_path / "missing.pt")


TINY = {
    "name": "tiny", "version": 1, "kind": "modality", "description": "two tiny experiences",
    "task_identity_at_test": True,
    "experiences": [{"name": "ct", "modality": "CT", "task": "segmentation"},
                    {"name": "pet", "modality": "PET", "task": "segmentation"}],
    "data": {"n_train": 4, "n_eval": 4, "shape": [16, 16, 16]},
    "train": {"epochs": 1, "batch_size": 4},
    "quick": {"n_train": 4, "n_eval": 4, "shape": [16, 16, 16], "epochs": 1},
}


def test_four_concurrent_runs_into_one_folder_all_land(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(json.dumps(TINY), encoding="utf-8")  # JSON is YAML
    cache, out = tmp_path / "cache", tmp_path / "out"  # a fresh phantom cache: the runs also race to fill it
    # the same run four times at once: same strategy, scenario, seed and parameters, so the same
    # checkpoint key and folder, the most room for clobbering
    assert in_subprocesses(*[("naive", str(scenario), out, cache, False)] * 4) == [0] * 4
    paths = find_results(out)
    assert len(paths) == 4 and len({p.name for p in paths}) == 4
    results = [read_result(p) for p in paths]
    assert len({r.run_id for r in results}) == 4
    assert all(r.rows() == results[0].rows() for r in results)  # and deterministic across processes
    assert all(r.env.determinism is not None and r.env.determinism.seed == 0 for r in results)
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix != ".json"]
    assert not leftovers  # no checkpoint, lock or temporary file left behind
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]


def test_sweep_resumes_an_interrupted_run_by_default(tmp_path, phantom_cache, quick_run, torch_one_thread):
    from unicon_bench.sweep import load_suite, run_suite, summary_lines

    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(json.dumps({"name": "one", "strategies": ["naive"], "scenarios": ["ct_to_pet"],
                                      "seeds": [0], "quick": True, "out": str(tmp_path / "out")}), encoding="utf-8")
    assert in_subprocesses(("naive", "ct_to_pet", tmp_path / "out", phantom_cache, True)) == [-signal.SIGKILL]
    report = run_suite(load_suite(suite_file), cache_dir=phantom_cache)
    assert report.ok and [(run.strategy, done) for run, done in report.resumed] == [("naive", 1)]
    assert "resumed from a checkpoint after 1 experience(s): naive on ct_to_pet, seed 0" in summary_lines(report)[1]
    ((_, path),) = report.completed
    assert read_result(path).rows() == quick_run("naive", "ct_to_pet", seed=0)[0].rows()


def test_failed_run_before_any_checkpoint_leaves_nothing(tmp_path, phantom_cache, monkeypatch):
    from unicon_bench.data import streams

    def broken(*args, **kwargs):
        raise RuntimeError("data source unavailable")

    monkeypatch.setattr(streams, "build_stream", broken)
    with pytest.raises(RuntimeError, match="data source unavailable"):
        harness.run("naive", "ct_to_pet", seed=0, quick=True, out=tmp_path, cache_dir=phantom_cache)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_run_without_checkpoints_leaves_nothing_when_it_fails(tmp_path, phantom_cache, torch_one_thread):
    class Crash(harness.SilentReporter):
        current = ""

        def phase(self, description, total):
            self.current = description

        def advance(self, done, total, info=""):
            if self.current.startswith("train 2/"):
                raise KeyboardInterrupt  # like a tuning trial pruned mid-run

    with pytest.raises(KeyboardInterrupt):
        harness.run("naive", "ct_to_pet", seed=0, quick=True, out=tmp_path, cache_dir=phantom_cache,
                    reporter=Crash(), checkpoints=False)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    with pytest.raises(CheckpointError, match="without checkpoints"):
        harness.run("naive", "ct_to_pet", out=tmp_path, quick=True, resume=True, checkpoints=False)
