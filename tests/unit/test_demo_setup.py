"""The demo's set-up: it writes under the folder it is started from, tells how to open the UI and serve its stores,
and SIGTERM stops what it started (here a stand-in child process stopped by an exit handler, as Prefect's
temporary server and Tryton are)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import erpsync
from erpsync.app.demo import demo_workdir, ui_lines


def test_the_demo_writes_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = demo_workdir()
    assert folder == tmp_path.resolve() / ".erpsync" / "demo"
    package = Path(erpsync.__file__).resolve().parent
    assert package not in folder.parents


def test_it_says_how_to_open_the_ui_and_serve_its_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = demo_workdir() / "erpsync.toml"
    plain = ui_lines("/x/.prefect", config, keep=False)
    assert any("PREFECT_HOME=/x/.prefect .venv/bin/prefect server start" in line for line in plain)
    assert not any("erpsync serve" in line for line in plain)  # the shops are gone once the demo ends
    kept = ui_lines("/x/.prefect", config, keep=True)
    assert any("erpsync serve --config .erpsync/demo/erpsync.toml" in line for line in kept)


CHILD = """
import atexit, subprocess, sys, time
from erpsync.app.demo import stop_on_signals
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
atexit.register(child.terminate)  # as Prefect's temporary server and Tryton register theirs
with stop_on_signals():
    try:  # entered before the pid is printed: the signal can land while print() is still returning
        print(child.pid, flush=True)  # only once the handlers are in place: the test signals as soon as it reads it
        while True:
            time.sleep(3600)
    finally:
        print("finally", flush=True)
"""


def test_sigterm_stops_what_the_demo_started() -> None:
    demo = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert demo.stdout is not None
    child = int(demo.stdout.readline())
    demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=20) == 128 + signal.SIGTERM
    assert demo.stdout.read().strip() == "finally"
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the demo's child outlived it"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not reaped by its dead parent yet) is gone
        return stat.read().split(")")[-1].split()[0] != "Z"
