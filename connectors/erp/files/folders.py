"""The inbox and the outbox: a local folder or a folder on an SFTP server, behind one small interface.

Every operation names a file relative to the folder. ``publish`` writes a file atomically: into a hidden
temporary name in the same folder, then one rename (POSIX rename on SFTP where the server offers it), so the
ERP never sees half a file. Failures are connector errors naming the folder (never a password): an SFTP login
refused is an ``AuthError``, an unreachable server a ``RetriableError``.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from erpsync.connectors.errors import AuthError, FatalError, RetriableError
from erpsync.connectors.http import Counters

SYSTEM = "files"
TEMP_PREFIX = ".erpsync-"
DONE_SUFFIX = ".done"  # the complete-file rule: "<name>.done" beside a file says it is whole


@dataclass(frozen=True)
class Entry:
    """A file in a folder: its name, size and modification time (seconds)."""

    name: str
    size: int
    mtime: float


class Folder(Protocol):
    """A folder the ERP and erpsync exchange files through."""

    where: str  # how messages name it (no credentials)

    def list(self) -> list[Entry]: ...

    def read(self, name: str) -> bytes: ...

    def exists(self, name: str) -> bool: ...

    def publish(self, name: str, data: bytes) -> None: ...

    def write(self, name: str, data: bytes) -> None: ...

    def move(self, name: str, subfolder: str, new_name: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def close(self) -> None: ...


class LocalFolder:
    """A folder on this machine (or a network share mounted here)."""

    def __init__(self, path: str | Path, counters: Counters) -> None:
        self.path = Path(path).expanduser()
        self.where = str(self.path)
        self.counters = counters

    def _check(self) -> None:
        if not self.path.is_dir():
            raise FatalError(SYSTEM, f"folder {self.where} does not exist (or is not a folder)")

    def list(self) -> list[Entry]:
        self.counters.count("read")
        self._check()
        found = []
        for item in os.scandir(self.path):
            if item.is_file():
                info = item.stat()
                found.append(Entry(item.name, info.st_size, info.st_mtime))
        return found

    def read(self, name: str) -> bytes:
        self.counters.count("read")
        return (self.path / name).read_bytes()

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def write(self, name: str, data: bytes) -> None:
        self.counters.count("write")
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def publish(self, name: str, data: bytes) -> None:
        self.counters.count("write")
        self._check()
        temp = self.path / f"{TEMP_PREFIX}{name}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path / name)

    def move(self, name: str, subfolder: str, new_name: str) -> None:
        self.counters.count("write")
        target = self.path / subfolder
        target.mkdir(exist_ok=True)
        os.replace(self.path / name, target / new_name)

    def remove(self, name: str) -> None:
        self.counters.count("write")
        (self.path / name).unlink(missing_ok=True)

    def close(self) -> None:
        return None


class SftpFolder:
    """A folder on an SFTP server (paramiko), connected on first use and kept for the connector's life."""

    def __init__(
        self,
        url: str,
        counters: Counters,
        *,
        password: Callable[[], str | None] = lambda: None,
        private_key: Callable[[], str | None] = lambda: None,
        known_hosts: str = "",
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 22
        self.user = unquote(parts.username or "")
        self.path = unquote(parts.path) or "/"
        self.where = f"sftp://{self.user}@{self.host}:{self.port}{self.path}"
        self.counters = counters
        self._password = password
        self._private_key = private_key
        self._known_hosts = known_hosts
        self._timeout = timeout
        self._client: Any = None
        self._ssh: Any = None
        self._lock = threading.RLock()

    def _sftp(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        import paramiko

        ssh = paramiko.SSHClient()
        if self._known_hosts:
            ssh.load_host_keys(self._known_hosts)
            ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # documented: set known_hosts to check
        key = None
        key_text = self._private_key()
        if key_text:
            key = _load_key(key_text)
        try:
            ssh.connect(
                self.host,
                port=self.port,
                username=self.user,
                password=self._password(),
                pkey=key,
                timeout=self._timeout,
                banner_timeout=self._timeout,
                auth_timeout=self._timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.AuthenticationException:
            ssh.close()
            raise AuthError(SYSTEM, f"{self.where}: the SFTP server refused the login of {self.user!r}") from None
        except paramiko.BadHostKeyException:
            ssh.close()
            raise FatalError(SYSTEM, f"{self.where}: the server's host key differs from known_hosts") from None
        except paramiko.SSHException as exc:
            ssh.close()
            if "not found in known_hosts" in str(exc):
                raise FatalError(SYSTEM, f"{self.where}: the server's host key is not in known_hosts") from None
            raise RetriableError(SYSTEM, f"{self.where}: SSH failed: {exc}") from None
        except OSError as exc:
            ssh.close()
            raise RetriableError(SYSTEM, f"{self.where}: cannot reach the SFTP server ({exc})") from None
        self._ssh = ssh
        sftp = ssh.open_sftp()
        sftp.get_channel().settimeout(self._timeout)
        return sftp

    def _full(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"

    def _call(self, kind: str, action: Callable[[Any], Any]) -> Any:
        self.counters.count("read" if kind == "read" else "write")
        sftp = self._sftp()
        try:
            return action(sftp)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise RetriableError(SYSTEM, f"{self.where}: {exc}") from None

    def list(self) -> list[Entry]:
        def listing(sftp: Any) -> list[Entry]:
            try:
                items = sftp.listdir_attr(self.path)
            except FileNotFoundError:
                raise FatalError(SYSTEM, f"folder {self.where} does not exist on the server") from None
            return [
                Entry(item.filename, int(item.st_size or 0), float(item.st_mtime or 0))
                for item in items
                if item.st_mode is not None and stat.S_ISREG(item.st_mode)
            ]

        result: list[Entry] = self._call("read", listing)
        return result

    def read(self, name: str) -> bytes:
        def fetch(sftp: Any) -> bytes:
            buffer = io.BytesIO()
            sftp.getfo(self._full(name), buffer)
            return buffer.getvalue()

        data: bytes = self._call("read", fetch)
        return data

    def exists(self, name: str) -> bool:
        def look(sftp: Any) -> bool:
            try:
                return stat.S_ISREG(sftp.stat(self._full(name)).st_mode or 0)
            except FileNotFoundError:
                return False

        found: bool = self._call("read", look)
        return found

    def _mkdir(self, sftp: Any, path: str) -> None:
        try:
            sftp.stat(path)
        except FileNotFoundError:
            sftp.mkdir(path)

    def write(self, name: str, data: bytes) -> None:
        def put(sftp: Any) -> None:
            if "/" in name:
                self._mkdir(sftp, self._full(name.rsplit("/", 1)[0]))
            sftp.putfo(io.BytesIO(data), self._full(name), confirm=True)

        self._call("write", put)

    def publish(self, name: str, data: bytes) -> None:
        def put(sftp: Any) -> None:
            temp = self._full(f"{TEMP_PREFIX}{name}.tmp")
            sftp.putfo(io.BytesIO(data), temp, confirm=True)
            _rename(sftp, temp, self._full(name))

        self._call("write", put)

    def move(self, name: str, subfolder: str, new_name: str) -> None:
        def rename(sftp: Any) -> None:
            self._mkdir(sftp, self._full(subfolder))
            _rename(sftp, self._full(name), self._full(f"{subfolder}/{new_name}"))

        self._call("write", rename)

    def remove(self, name: str) -> None:
        def unlink(sftp: Any) -> None:
            try:
                sftp.remove(self._full(name))
            except FileNotFoundError:
                return

        self._call("write", unlink)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._ssh is not None:
                self._ssh.close()
                self._ssh = None


def _rename(sftp: Any, source: str, target: str) -> None:
    """Rename replacing the target: POSIX rename where the server offers it, else remove then rename."""
    try:
        sftp.posix_rename(source, target)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(target)
        sftp.rename(source, target)


def _load_key(text: str) -> Any:
    import paramiko

    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise FatalError(SYSTEM, "private_key is not an unencrypted OpenSSH/PEM private key (ed25519, ecdsa or rsa)")


def open_folder(
    location: str,
    counters: Counters,
    *,
    password: Callable[[], str | None] = lambda: None,
    private_key: Callable[[], str | None] = lambda: None,
    known_hosts: str = "",
    timeout: float = 30.0,
) -> Folder:
    """The folder at ``location``: ``sftp://user@host[:port]/path`` or a local path."""
    if location.startswith("sftp://"):
        return SftpFolder(
            location,
            counters,
            password=password,
            private_key=private_key,
            known_hosts=known_hosts,
            timeout=timeout,
        )
    return LocalFolder(location, counters)
