"""A real, local Tryton 8.2 server (SQLite) for the end-to-end tests and `make demo`.

`ensure_database()` builds the activated + seeded database once and caches it (keyed by the installed
trytond module versions and the seed); `start_tryton()` copies that file into a work dir and runs
`trytond` on it. `JsonRpcSession` is a JSON-RPC session for tests and seeding checks, over the connector's
client (`connectors/erp/tryton/rpc.py`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from erpsync.connectors.erp.tryton.rpc import LOGIN, TrytonRpc, tryton_reply
from erpsync.connectors.errors import ConnectorError, RetriableError
from erpsync.connectors.http import RetryPolicy
from erpsync.dev import tryton_seed, tryton_seeding

# Caches live in the folder the process starts from (the project folder for tests, bench and `make demo`).
WORK_ROOT = Path.cwd()
DEFAULT_CACHE_DIR = WORK_ROOT / ".cache" / "tryton"
DATABASE_NAME = "erpsync"
ADMIN_LOGIN = "admin"
# A throwaway local development database: the password is a published constant on purpose.
ADMIN_PASSWORD = "admin-dev-password"
ADMIN_EMAIL = "admin@example.com"
MODULES = ("sale", "stock", "purchase", "product", "sale_price_list")
READY_TIMEOUT_SECONDS = 60.0
_CACHE_PREFIX = "db-"
_DB_FILE = f"{DATABASE_NAME}.sqlite"
_MANIFEST_FILE = "manifest.json"
_TIMINGS_FILE = "build-timings.json"


class TrytonStartError(RuntimeError):
    """The dev Tryton database could not be built or the server did not become ready."""


class TrytonRpcError(RuntimeError):
    """A JSON-RPC call answered with an error (`name` is Tryton's exception class or message id)."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method}: {str(error)[:2000]}")


# --- the cached database -------------------------------------------------------------------------------


def _installed_versions() -> dict[str, str]:
    names = sorted(
        dist.metadata["Name"].lower().replace("-", "_")
        for dist in importlib.metadata.distributions()
        if (dist.metadata["Name"] or "").lower().replace("-", "_").startswith(("trytond", "proteus"))
    )
    return {name: importlib.metadata.version(name) for name in names}


# The modules whose source makes the seeded database: editing either rebuilds it.
SEED_MODULES = (tryton_seed, tryton_seeding)


def cache_key() -> str:
    """Key of the cached database: trytond/proteus versions, the modules, SEED_VERSION, the seed modules' source."""
    material = json.dumps(
        {
            "versions": _installed_versions(),
            "modules": MODULES,
            "seed_version": tryton_seed.SEED_VERSION,
            "seed_source": {
                module.__name__: hashlib.sha256(Path(str(module.__file__)).read_bytes()).hexdigest()
                for module in SEED_MODULES
            },
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _venv_executable(name: str) -> str:
    """A console script from the venv running this interpreter (never a `trytond` found on PATH)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise TrytonStartError(f"{path} not found: install the dev extras (trytond) in this venv")
    return str(path)


def _child_env(**extra: str) -> dict[str, str]:
    # TRYTOND_* variables override config sections; keep the dev server deterministic.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRYTOND")}
    env.update(extra)
    return env


def _write_config(path: Path, db_dir: Path, port: int | None = None) -> None:
    lines = ["[database]", "uri = sqlite://", f"path = {db_dir}", ""]
    if port is not None:
        lines += ["[web]", f"listen = 127.0.0.1:{port}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _run_logged(cmd: list[str], log: Path, env: dict[str, str], what: str) -> float:
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=WORK_ROOT, check=False)
    if result.returncode != 0:
        raise TrytonStartError(f"{what} failed (exit {result.returncode}); log tail:\n{_tail(log)}")
    return time.perf_counter() - started


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _build(build_dir: Path) -> dict[str, Any]:
    """Activate the modules and seed into `build_dir`; return the timings."""
    config = build_dir / "trytond.conf"
    log = build_dir / "build.log"
    _write_config(config, build_dir)
    (build_dir / _DB_FILE).touch()
    passfile = build_dir / "admin-password"
    passfile.write_text(ADMIN_PASSWORD, encoding="utf-8")
    admin_cmd = [
        _venv_executable("trytond-admin"),
        "-c",
        str(config),
        "-d",
        DATABASE_NAME,
        "-u",
        *MODULES,
        "--activate-dependencies",
        "--email",
        ADMIN_EMAIL,
    ]
    admin_seconds = _run_logged(admin_cmd, log, _child_env(TRYTONPASSFILE=str(passfile)), "trytond-admin")
    passfile.unlink()
    seed_cmd = [
        sys.executable,
        "-m",
        tryton_seeding.__name__,
        str(config),
        DATABASE_NAME,
        str(build_dir / _MANIFEST_FILE),
    ]
    seed_seconds = _run_logged(seed_cmd, log, _child_env(), f"seeding ({tryton_seeding.__name__})")
    config.unlink()
    return {
        "admin_seconds": round(admin_seconds, 2),
        "seed_seconds": round(seed_seconds, 2),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _installed_versions(),
        "seed_version": tryton_seed.SEED_VERSION,
    }


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale(cache_dir: Path, keep: str) -> None:
    for entry in cache_dir.iterdir():
        stale_build = entry.name.startswith(".build-")
        old_version = entry.name.startswith(_CACHE_PREFIX) and entry.name != keep
        if entry.is_dir() and (stale_build or old_version):
            shutil.rmtree(entry, ignore_errors=True)


def ensure_database(cache_dir: Path | None = None) -> Path:
    """Return the cached, seeded SQLite file for the installed versions, building it first if needed."""
    return _ensure_database(cache_dir)[0]


def _ensure_database(cache_dir: Path | None) -> tuple[Path, bool]:
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = f"{_CACHE_PREFIX}{cache_key()}"
    target = cache_dir / entry
    if (target / _DB_FILE).exists():
        return target / _DB_FILE, False
    with _file_lock(cache_dir / ".lock"):
        if (target / _DB_FILE).exists():  # another process built it while we waited
            return target / _DB_FILE, False
        _remove_stale(cache_dir, keep=entry)  # under the lock, so leftovers are from killed builds
        build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
        try:
            started = time.perf_counter()
            timings = _build(build_dir)
            timings["build_seconds"] = round(time.perf_counter() - started, 2)
            (build_dir / _TIMINGS_FILE).write_text(json.dumps(timings, indent=2), encoding="utf-8")
            build_dir.chmod(0o755)  # mkdtemp made it private
            build_dir.rename(target)  # atomic: a killed build never looks finished
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
    return target / _DB_FILE, True


def read_manifest(database_file: Path) -> dict[str, Any]:
    """The ids the seed created (warehouses/locations, products by SKU, parties, taxes) for a cached file."""
    data: dict[str, Any] = json.loads((database_file.parent / _MANIFEST_FILE).read_text(encoding="utf-8"))
    return data


def read_build_timings(database_file: Path) -> dict[str, Any]:
    """The timings recorded when the cached file was built."""
    data: dict[str, Any] = json.loads((database_file.parent / _TIMINGS_FILE).read_text(encoding="utf-8"))
    return data


# --- JSON-RPC ------------------------------------------------------------------------------------------

# A test sees every failure as it happens: no retries.
_NO_RETRY = RetryPolicy(max_retries=0)


class JsonRpcSession:
    """A logged-in JSON-RPC session: `call("model.x.y.method", *params)` (context is the caller's job).

    It talks through the connector's client (`connectors.erp.tryton.rpc.TrytonRpc`) without retries, keeps JSON
    floats as floats, and raises `TrytonRpcError` with Tryton's own error (`[name, args]`, or `"HTTP 401"`...).
    """

    def __init__(self, url: str, database: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.url = f"{url.rstrip('/')}/{database}/rpc/"
        self.username = username
        self.rpc = TrytonRpc(
            url, database, username, password, timeout_seconds=timeout, retry=_NO_RETRY, parse_float=float
        )
        try:
            _raise_rpc_errors(LOGIN, self.rpc.login)  # 8.2 answers [user_id, session, bus_url_or_null]
        except BaseException:
            self.rpc.close()
            raise

    @property
    def user_id(self) -> int:
        """The logged-in user's id."""
        assert self.rpc.user_id is not None
        return self.rpc.user_id

    @property
    def context(self) -> dict[str, Any]:
        """The user's preferences (`res.user.get_preferences`): pass them as the last param of model calls."""
        return self.rpc.context

    def call(self, method: str, *params: Any) -> Any:
        """Call `method` with positional `params`."""
        return _raise_rpc_errors(method, lambda: self.rpc.call(method, *params, kind="write"))

    def call_accepting_warnings(self, method: str, *params: Any, max_warnings: int = 5) -> Any:
        """Call `method`; on a UserWarning record it as accepted (`res.user.warning`) and retry, as a user would.

        The `_skip_warnings` context key does not help over RPC: the server drops `_`-prefixed context keys.
        """
        for _ in range(max_warnings):
            try:
                return self.call(method, *params)
            except TrytonRpcError as exc:
                if not (isinstance(exc.error, list) and exc.error and exc.error[0] == "UserWarning"):
                    raise
                warning_name = exc.error[1][0]
                self.call(
                    "model.res.user.warning.create",
                    [{"user": self.user_id, "name": warning_name, "always": False}],
                    self.context,
                )
        return self.call(method, *params)

    def close(self) -> None:
        """Log out and close the HTTP client."""
        with suppress(TrytonRpcError):
            self.call("common.db.logout")
        self.rpc.close()

    def __enter__(self) -> JsonRpcSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_rpc_errors(method: str, send: Callable[[], Any]) -> Any:
    """`send()`, its connector errors raised as `TrytonRpcError` carrying Tryton's reply (or the HTTP status)."""
    try:
        return send()
    except ConnectorError as exc:
        reply = tryton_reply(exc)
        if reply is None:
            reply = f"HTTP {exc.status}" if exc.status is not None else exc.message
        raise TrytonRpcError(method, reply) from exc


# --- the server ----------------------------------------------------------------------------------------


@dataclass
class TrytonServer:
    """A running dev trytond: where it listens and how to log in; `stop()` or use it as a context manager."""

    url: str
    database: str
    username: str
    password: str = field(repr=False)
    port: int
    pid: int
    workdir: Path
    log_path: Path
    manifest: dict[str, Any]
    start_seconds: float
    build_timings: dict[str, Any]
    built_now: bool
    cache_file: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def session(self) -> JsonRpcSession:
        """A fresh logged-in JSON-RPC session as the admin user."""
        return JsonRpcSession(self.url, self.database, self.username, self.password)

    def storage_location(self, warehouse_code: str = tryton_seed.DEFAULT_WAREHOUSE) -> int:
        """The id of a seeded warehouse's storage location."""
        return int(self.manifest["warehouses"][warehouse_code]["storage"])

    def is_running(self) -> bool:
        """Whether the server process is still alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after `timeout`) and reap it; idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def __enter__(self) -> TrytonServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    rpc = TrytonRpc(url, DATABASE_NAME, ADMIN_LOGIN, ADMIN_PASSWORD, timeout_seconds=5.0, retry=_NO_RETRY)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise TrytonStartError(f"trytond exited with code {process.returncode}; log tail:\n{_tail(log_path)}")
            try:
                rpc.login()
                return
            except RetriableError as exc:
                if exc.status is not None:  # listening but failing: waiting will not help
                    raise TrytonStartError(
                        f"trytond answered the login with {exc}; log tail:\n{_tail(log_path)}"
                    ) from exc
                last_error = exc.message  # not listening yet
            except ConnectorError as exc:  # listening but wrong: waiting will not help
                raise TrytonStartError(f"trytond answered the login with {exc}; log tail:\n{_tail(log_path)}") from exc
            time.sleep(0.2)
    finally:
        rpc.close()
    raise TrytonStartError(f"trytond not ready after {timeout:.0f}s ({last_error}); log tail:\n{_tail(log_path)}")


def start_tryton(
    workdir: Path,
    *,
    cache_dir: Path | None = None,
    port: int | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> TrytonServer:
    """Start trytond on a private copy of the cached seeded database; return once JSON-RPC login works."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cached, built_now = _ensure_database(cache_dir)
    started = time.perf_counter()
    shutil.copyfile(cached, workdir / _DB_FILE)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else _free_port()
        config = workdir / "trytond.conf"
        _write_config(config, workdir, chosen)
        log_path = workdir / "trytond.log"
        url = f"http://127.0.0.1:{chosen}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [_venv_executable("trytond"), "-c", str(config), "-d", DATABASE_NAME],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_child_env(),
                cwd=workdir,
            )
        try:
            _wait_ready(process, url, log_path, ready_timeout)
        except TrytonStartError:
            _terminate(process)
            if attempt + 1 < attempts and "Address already in use" in _tail(log_path):
                continue  # lost the race for the free port: pick another one
            raise
        except BaseException:
            _terminate(process)
            raise
        server = TrytonServer(
            url=url,
            database=DATABASE_NAME,
            username=ADMIN_LOGIN,
            password=ADMIN_PASSWORD,
            port=chosen,
            pid=process.pid,
            workdir=workdir,
            log_path=log_path,
            manifest=read_manifest(cached),
            start_seconds=round(time.perf_counter() - started, 2),
            build_timings=read_build_timings(cached),
            built_now=built_now,
            cache_file=cached,
            _process=process,
        )
        atexit.register(server.stop)  # never leave an orphan trytond behind a forgotten stop()
        return server
    raise AssertionError("unreachable")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    """`python -m erpsync.dev.tryton [WORKDIR] [--port N]`: run the dev server in the foreground until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m erpsync.dev.tryton", description=main.__doc__)
    parser.add_argument("workdir", nargs="?", type=Path, default=WORK_ROOT / ".cache" / "tryton-run")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.workdir.exists():
        shutil.rmtree(args.workdir)  # a fresh copy of the seed every run
    with start_tryton(args.workdir, port=args.port) as server:
        built = f"built in {server.build_timings['build_seconds']} s, " if server.built_now else ""
        print(f"Tryton ready at {server.url}/{server.database}/rpc/ ({built}started in {server.start_seconds} s)")
        print(f"login {server.username} / {server.password}; log {server.log_path}", flush=True)
        try:
            while server.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
