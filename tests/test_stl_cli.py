"""Tests for the `python stl.py` command line on a temporary history.json."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

STL_SCRIPT = Path(__file__).resolve().parents[1] / "stl.py"
HISTORY = [
    {"epoch": 0, "test_acc": 0.50, "energy_uj": 8.0, "phase": "search"},
    {"epoch": 1, "test_acc": 0.70, "energy_uj": 9.0, "phase": "search"},
    {"epoch": 2, "test_acc": 0.85, "energy_uj": 12.0, "phase": "search"},
]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, str(STL_SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps(HISTORY))
    return tmp_path


def test_satisfied_exits_zero(run_dir):
    result = run_cli(
        "--spec",
        "F(test_acc >= 0.8) & G(energy_uj <= 20)",
        "--trace",
        str(run_dir / "history.json"),
        "--strict",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SATISFIED")
    assert "at step 2" in result.stdout


def test_violated_exits_one_only_with_strict(run_dir):
    spec = "G(energy_uj <= 10) & F(test_acc >= 0.8)"
    relaxed = run_cli("--spec", spec, "--trace", str(run_dir))  # a run directory works too
    assert relaxed.returncode == 0
    assert relaxed.stdout.startswith("VIOLATED")
    strict = run_cli("--spec", spec, "--trace", str(run_dir), "--strict", "--stl_normalize")
    assert strict.returncode == 1
    assert "robustness: -0.2 (normalized margins)" in strict.stdout


def test_json_output_and_dict_of_lists(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({"loss": [3.0, 2.0, 1.0]}))
    result = run_cli("--spec", "F[1,2](loss <= 1.5)", "--trace", str(path), "--json")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["satisfied"] is True and verdict["clauses"][0]["step"] == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("G(energy_uj <= )", "expected a number at column 16"),
        ("G(phase <= 1)", "unknown signal 'phase'"),  # non-numeric keys are not signals
    ],
)
def test_bad_spec_exits_two(run_dir, spec, message):
    result = run_cli("--spec", spec, "--trace", str(run_dir))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_missing_trace_exits_two(tmp_path):
    result = run_cli("--spec", "a >= 1", "--trace", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "nope.json" in result.stderr


def test_invalid_json_exits_two(tmp_path):
    path = tmp_path / "history.json"
    path.write_text("{not json")
    result = run_cli("--spec", "a >= 1", "--trace", str(tmp_path))
    assert result.returncode == 2
    assert f"trace {path} is not valid JSON" in result.stderr
