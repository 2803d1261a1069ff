"""--logger tensorboard / mlflow / csv: what a quick run logs can be read back with each tool's own reader."""

from __future__ import annotations

import csv

import pytest

from unicon_bench.harness.loggers import LoggerError, check_loggers
from unicon_bench.results import read_result


@pytest.mark.slow
def test_quick_run_logs_to_tensorboard_mlflow_and_csv(tmp_path, phantom_cache, torch_one_thread, monkeypatch):
    from typer.testing import CliRunner

    from unicon_bench.cli import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "results"
    proc = CliRunner().invoke(app, [
        "run", "--strategy", "naive", "--scenario", "ct_to_pet", "--quick", "--no-progress", "--out", str(out),
        "--set", "epochs=1", "--logger", "tensorboard", "--logger", "mlflow", "--logger", "csv",
    ])
    assert proc.exit_code == 0, proc.output
    (path,) = list((out / "ct_to_pet" / "naive").glob("*.json"))
    result = read_result(path)
    init, R = result.rows()
    names = result.scenario.experiences  # ct_seg, pet_seg
    from unicon_bench.scenario import get_scenario

    spec = get_scenario("ct_to_pet")
    steps_per_exp = -(-spec.quick.n_train // spec.train.batch_size)  # the quick training subjects in batches, one epoch

    # TensorBoard: the event files, read back with TensorBoard's own EventAccumulator
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = list((out / "tensorboard" / "ct_to_pet" / "naive").iterdir())
    assert run_dir.name == result.run_id and list(run_dir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run_dir))
    events.Reload()
    for j, name in enumerate(names):
        logged = [(e.step, e.value) for e in events.Scalars(f"eval/{name}/dice")]
        assert [s for s, _ in logged] == [0, 1]
        assert [v for _, v in logged] == pytest.approx([R[0][j], R[1][j]], abs=1e-6)  # stored as float32
        assert events.Scalars(f"init/{name}/dice")[0].value == pytest.approx(init[j], abs=1e-6)
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == list(range(2 * steps_per_exp))
    assert events.Scalars("summary/bwt")[0].value == pytest.approx(result.summary.bwt, abs=1e-6)

    # MLflow: the run in the local store under the output folder, read back with MlflowClient
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("unicon-bench/ct_to_pet")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["strategy"] == "naive" and run.data.params["epochs"] == "1"
    assert run.data.tags["unicon_bench.run_id"] == result.run_id
    for j, name in enumerate(names):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, f"eval/{name}/dice"))
        assert history == [(0, pytest.approx(R[0][j], abs=1e-12)), (1, pytest.approx(R[1][j], abs=1e-12))]
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2 * steps_per_exp
    assert run.data.metrics["summary/final_average"] == pytest.approx(result.summary.final_average, abs=1e-12)

    # CSV: name, step, value rows agreeing with the result file
    rows = list(csv.DictReader((out / "csv" / "ct_to_pet" / "naive" / f"{result.run_id}.csv").open()))
    evals = {(r["name"], int(r["step"])): float(r["value"]) for r in rows if r["name"].startswith("eval/")}
    assert evals[(f"eval/{names[1]}/dice", 1)] == R[1][1]
    # the loggers' files are no results: validate still finds exactly one result file
    assert [p for p in out.rglob("*.json")] == [path]


def test_unknown_logger_is_a_clear_error():
    with pytest.raises(LoggerError, match="unknown logger wandb; available: tensorboard, mlflow, csv"):
        check_loggers(["tensorboard", "wandb"])
    assert check_loggers(["csv", "csv", "mlflow"]) == ["csv", "mlflow"]
