"""The erpsync command: a light help, one-line configuration errors with exit code 2, check against live systems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ERPSYNC = [sys.executable, "-m", "erpsync.app.cli"]
VALID = (
    "[erp]\ntype = 'tryton'\ndatabase = 'x'\npassword = 'literal:pw'\n"
    "[[stores]]\nname = 'main'\nurl = 'https://shop.example.ro'\napi_key = 'k'\napi_secret = 'literal:s'\n"
)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ERPSYNC, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
    )


def test_help_imports_nothing_heavy() -> None:
    # What it costs in seconds is measured by `python -m bench cli`, not asserted here (a loaded CI machine).
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "check" in result.stdout and "run" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from erpsync.app.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['--help']); "
            "print(','.join(m for m in ('great_expectations', 'prefect', 'pandas', 'sqlalchemy') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[erp\ntype = 'tryton'\n", "TOML syntax error"),
        (VALID + "colour = 'red'\n", "colour: unknown key"),
        (
            VALID.replace("api_key = 'k'", "api_key = 'k'\nrequests_per_second = 'fast'"),
            "stores[0].requests_per_second: must be a number",
        ),
        (
            VALID
            + "[[stores]]\nname = 'main'\nurl = 'https://b.example.ro'\napi_key = 'k'\napi_secret = 'literal:s'\n",
            "stores[1].name: duplicate store name 'main'",
        ),
        ("[erp]\ntype = 'sap'\n", "erp.type: must be one of"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "erpsync.toml"
    path.write_text(content)
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(str(path)) and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_env_secret_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "erpsync.toml"
    path.write_text(
        "[erp]\ntype = 'tryton'\ndatabase = 'x'\npassword = 'env:ERPSYNC_TEST_UNSET_PW'\n"
        "[[stores]]\nname = 'main'\nurl = 'https://shop.example.ro'\napi_key = 'k'\napi_secret = 'literal:s'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ERPSYNC_TEST_UNSET_PW"}
    result = subprocess.run(
        [*ERPSYNC, "check", "--config", str(path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"{path}: erp.password: environment variable ERPSYNC_TEST_UNSET_PW is not set"


def test_config_path_falls_back_to_env_then_cwd(tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path, env={"ERPSYNC_CONFIG": ""})
    assert result.returncode == 2
    assert "erpsync.toml: file not found" in result.stderr
    result = run_cli("check", env={"ERPSYNC_CONFIG": str(tmp_path / "nope.toml")})
    assert result.returncode == 2 and "nope.toml: file not found" in result.stderr


def test_run_unknown_flow_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "erpsync.toml"
    path.write_text(VALID)
    result = run_cli("run", "teleport", "--config", str(path))
    assert result.returncode == 2
    assert "unknown flow 'teleport'" in result.stderr


def test_run_unknown_store_is_a_usage_error_naming_the_configured_ones(tmp_path: Path) -> None:
    path = tmp_path / "erpsync.toml"
    path.write_text(VALID)
    result = run_cli("run", "stock", "--store", "nope", "--config", str(path))
    assert result.returncode == 2
    assert "no store named 'nope' (configured: 'main')" in result.stderr
