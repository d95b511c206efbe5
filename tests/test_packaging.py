"""One import package: a wheel built from the checkout has ``erpsync`` as its only top-level name, installs and
imports in a fresh virtual environment, and the generic names of the folders (core, flows, tasks ...) are not
importable from anywhere but the checkout's own folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GENERIC = ("core", "connectors", "tasks", "flows", "expectations", "simulators", "devservers", "testing", "app")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the checkout, as `pip install .` builds it (isolated build, setuptools from PyPI)."""
    out = tmp_path_factory.mktemp("wheel")
    uv = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    assert uv, "uv is installed by `make install`"
    result = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("erpsync-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtual environment with the wheel installed; the dependencies come from the project's venv by path
    (a .pth line), not from its editable install, which is a hook a plain path does not load."""
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    uv = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    assert uv
    installed = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    yield python


def _python(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=180)


def test_the_wheel_has_one_top_level_package_with_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"erpsync", wheel.name.split("-py3")[0] + ".dist-info"}
    for expected in (
        "erpsync/flows/stock.py",
        "erpsync/tasks/stock.py",
        "erpsync/connectors/http.py",
        "erpsync/core/migrations/versions/0001_initial.py",
        "erpsync/core/migrations/script.py.mako",
        "erpsync/expectations/erp_stock.json",
        "erpsync/app/cli.py",
        "erpsync/py.typed",
    ):
        assert expected in names, expected
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt").decode()
    assert "erpsync = erpsync.app.cli:main" in entry_points


def test_the_installed_wheel_imports_as_erpsync_and_nothing_else(venv: Path, tmp_path: Path) -> None:
    loaded = _python(
        venv,
        "import erpsync.flows.stock, erpsync.app.cli; print(erpsync.flows.stock.__file__)",
        tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().startswith(str(venv.parent.parent)), loaded.stdout  # the wheel's copy, not ours
    for name in GENERIC:
        result = _python(venv, f"import {name}", tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)


def test_a_worker_loads_a_deployment_entrypoint_without_the_project_folder(venv: Path, tmp_path: Path) -> None:
    code = (
        "from prefect.flows import load_flow_from_entrypoint; "
        "print(load_flow_from_entrypoint('erpsync.flows.stock:stock_sync').name)"
    )
    result = _python(venv, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "stock-sync"


def test_the_editable_install_maps_only_erpsync(tmp_path: Path) -> None:
    """The project's own venv (editable install): outside the checkout, only ``erpsync`` is importable."""
    found = _python(Path(sys.executable), "import erpsync.flows.stock; print(erpsync.flows.stock.__file__)", tmp_path)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).resolve().is_relative_to(ROOT)
    for name in GENERIC:
        result = _python(Path(sys.executable), f"import {name}", tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)
