"""Output problems surface before any work and as one line, exit 2, with no partial file (issue #22).

The machine's own read-only or full disks cannot be made in a test (and root ignores permission
bits), so those are simulated where the OS would report them: at the probe or the write."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unicon_bench import fileio
from unicon_bench.cli import app
from unicon_bench.fileio import OutputError, atomic_write_text, check_output_folder

FIXTURE = Path(__file__).parent / "fixtures" / "result_schema1_ct_tasks.json"


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def results(tmp_path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "r.json")
    return folder


def _read_only(monkeypatch, code=errno.EROFS):
    def refuse(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)


def test_run_with_out_a_file_fails_before_training(tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder")
    line = _one_error_line(CliRunner().invoke(app, ["run", "-s", "naive", "-c", "ct_to_pet", "--quick",
                                                    "--no-progress", "--out", str(out)]))
    assert f"{out} is a file, not a folder" in line
    assert out.read_text() == "not a folder"


def test_run_with_a_read_only_out_fails_before_training(tmp_path, monkeypatch):
    calls = []
    import unicon_bench.data.streams as streams

    monkeypatch.setattr(streams, "build_stream", lambda *a, **k: calls.append(1))  # training would start here
    _read_only(monkeypatch)
    line = _one_error_line(CliRunner().invoke(app, ["run", "-s", "naive", "-c", "ct_to_pet", "--quick",
                                                    "--no-progress", "--out", str(tmp_path / "out")]))
    assert "is not writable: Read-only file system" in line and calls == []


def test_sweep_with_out_a_file(tmp_path):
    out = tmp_path / "out"
    out.write_text("x")
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nstrategies: [naive]\nscenarios: [ct_to_pet]\nseeds: [0]\nquick: true\n")
    line = _one_error_line(CliRunner().invoke(app, ["sweep", str(suite), "--out", str(out), "--no-progress"]))
    assert "is a file, not a folder" in line


@pytest.mark.parametrize("fmt", ["html", "md", "csv"])
def test_leaderboard_output_that_is_a_folder(results, tmp_path, fmt):
    line = _one_error_line(CliRunner().invoke(app, ["leaderboard", str(results), "-f", fmt, "-o", str(tmp_path)]))
    assert f"{tmp_path} is a folder; give a file name" in line


def test_leaderboard_output_read_only(results, tmp_path, monkeypatch):
    _read_only(monkeypatch)
    line = _one_error_line(CliRunner().invoke(app, ["leaderboard", str(results), "-o", str(tmp_path / "lb.html")]))
    assert "not writable" in line and not (tmp_path / "lb.html").exists()


def test_update_baseline_to_a_read_only_place(results, tmp_path, monkeypatch):
    _read_only(monkeypatch)
    target = tmp_path / "base.json"
    line = _one_error_line(CliRunner().invoke(app, ["check", str(results), "--baseline", str(target), "--update-baseline"]))
    assert "not writable" in line and not target.exists()


def test_update_baseline_to_a_folder(results, tmp_path):
    line = _one_error_line(CliRunner().invoke(app, ["check", str(results), "--baseline", str(tmp_path), "--update-baseline"]))
    assert "is a folder" in line


def test_a_full_disk_mid_write_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OutputError, match="cannot write .*x.json: No space left on device"):
        atomic_write_text(tmp_path / "x.json", json.dumps({"a": 1}))
    assert list(tmp_path.iterdir()) == []


def test_check_output_folder_creates_nothing_and_leaves_no_probe(tmp_path):
    folder = check_output_folder(tmp_path / "a" / "b")
    assert not folder.exists() and list(tmp_path.iterdir()) == []  # probed above, nothing created
