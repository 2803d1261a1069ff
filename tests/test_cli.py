"""The command line in subprocesses: help, listing, one-line user errors, validate."""

from __future__ import annotations

import sys
import subprocess

import pytest

from conftest import dump_json, error_lines, load_json

STRATEGIES = ["ewc", "joint", "naive", "replay", "specialized"]
SCENARIOS = ["ct_sites", "ct_tasks", "ct_to_pet", "unicon"]


def assert_one_line_error(proc, *needles):
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_help(cli, tmp_path):
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in ("run", "ls", "validate"):
        assert word in proc.stdout


def test_run_help(cli, tmp_path):
    proc = cli("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for option in ("--strategy", "--scenario", "--quick", "--set", "--seed"):
        assert option in proc.stdout


def test_ls_strategies(cli, tmp_path):
    proc = cli("ls", "strategies", cwd=tmp_path)
    print(f"`unicon-bench ls strategies` took {proc.elapsed:.2f}s")
    assert proc.returncode == 0, proc.stderr
    for name in STRATEGIES:
        assert name in proc.stdout
    assert "builtin" in proc.stdout
    assert "family" in proc.stdout.splitlines()[0]
    ewc = next(line for line in proc.stdout.splitlines() if line.startswith("ewc "))
    assert "regularisation" in ewc


def test_ls_does_not_import_torch(tmp_path):
    """Listing reads sources with ast: it must not pay for torch/Avalanche."""
    code = (
        "import sys\n"
        "from unicon_bench.cli import main\n"
        "for what in ('strategies', 'scenarios'):\n"
        "    sys.argv = ['unicon-bench', 'ls', what]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('HEAVY:', sorted(m for m in ('torch', 'avalanche', 'monai') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY: []" in proc.stdout


def test_ls_scenarios(cli, tmp_path):
    proc = cli("ls", "scenarios", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in SCENARIOS:
        assert name in proc.stdout
    assert "invalid" not in proc.stdout
    assert "site_a -> site_b -> site_c" in proc.stdout


def test_ls_bad_argument(cli, tmp_path):
    proc = cli("ls", "models", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_run_unknown_strategy(cli, tmp_path):
    proc = cli("run", "--strategy", "nope", "--scenario", "ct_to_pet", cwd=tmp_path)
    line = assert_one_line_error(proc, "available:", "nope")
    for name in STRATEGIES:
        assert name in line
    assert not (tmp_path / "results").exists()


def test_run_unknown_scenario(cli, tmp_path):
    proc = cli("run", "--strategy", "naive", "--scenario", "nope", cwd=tmp_path)
    line = assert_one_line_error(proc, "available:", "nope")
    for name in SCENARIOS:
        assert name in line


def test_run_invalid_scenario_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: 1\nkind: sideways\n")
    proc = cli("run", "--strategy", "naive", "--scenario", bad, "--quick", cwd=tmp_path)
    assert_one_line_error(proc, "invalid scenario", "kind")


@pytest.mark.slow  # imports torch to check compatibility
def test_run_incompatible(cli, tmp_path):
    proc = cli("run", "--strategy", "specialized", "--scenario", "ct_sites", "--quick", cwd=tmp_path)
    assert_one_line_error(proc, "specialized", "ct_sites", "domain")
    assert not (tmp_path / "results").exists()


@pytest.mark.slow  # imports torch to read the strategy's parameters
def test_run_unknown_parameter(cli, tmp_path):
    proc = cli("run", "--strategy", "naive", "--scenario", "ct_to_pet", "--quick", "--set", "bogus=1", cwd=tmp_path)
    assert_one_line_error(proc, "bogus", "known:", "epochs")


def test_run_set_without_equals(cli, tmp_path):
    proc = cli("run", "--strategy", "naive", "--scenario", "ct_to_pet", "--quick", "--set", "noequals", cwd=tmp_path)
    assert_one_line_error(proc, "key=value", "noequals")


@pytest.mark.slow
def test_run_ewc_wrong_type_is_one_line(cli, tmp_path):
    proc = cli("run", "--strategy", "ewc", "--scenario", "ct_to_pet", "--quick", "--set", "epochs=abc", cwd=tmp_path)
    assert_one_line_error(proc, "epochs", "abc")


# -- validate ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_result(quick_run):
    return quick_run("naive", "ct_to_pet")[1]


@pytest.mark.slow
def test_validate_good(cli, good_result, tmp_path):
    proc = cli("validate", good_result, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok")
    assert "ct_to_pet" in proc.stdout and "naive" in proc.stdout


@pytest.mark.slow
def test_validate_broken(cli, good_result, tmp_path):
    data = load_json(good_result)
    primary = data["scenario"]["metrics"]
    data["matrix"].remove(next(e for e in reversed(data["matrix"]) if e["metric"] == primary[e["evaluated_on"]]))
    broken = dump_json(data, tmp_path / "broken.json")
    proc = cli("validate", broken, cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "matrix" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_validate_folder_with_one_bad(cli, good_result, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "good.json").write_bytes(good_result.read_bytes())
    data = load_json(good_result)
    data["schema_version"] = 99
    dump_json(data, folder / "newer.json")
    (folder / "garbage.json").write_text("{not json")
    proc = cli("validate", folder, cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("ok") for line in lines) == 1
    assert sum(line.startswith("FAIL") for line in lines) == 2
    assert "newer" in proc.stdout


def test_validate_empty_folder(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("validate", empty, cwd=tmp_path)
    assert proc.returncode == 2
    assert "no result files" in proc.stderr
