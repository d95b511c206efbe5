"""A real SFTP server for the tests (asyncssh, on a loopback port, in a thread of its own): password or key
login, each session rooted (chroot) in one folder on disk, so a test drops exports where the server serves them.

``sftp_server`` (session fixture) starts one for the whole test session; ``SftpServer.folder(name)`` makes a
fresh folder under its root and returns the ``sftp://`` URL that names it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USER = "erp"
PASSWORD = "sftp-pass-0123"


@dataclass
class SftpServer:
    root: Path
    port: int
    host_key_line: str  # the server's public key, as a known_hosts line for [127.0.0.1]:port
    client_key: str  # an authorised client's private key (OpenSSH text)
    logins: list[str] = field(default_factory=list)  # "user:method:ok" per attempt

    def folder(self, name: str = "") -> tuple[Path, str]:
        """A new, empty folder: its path on disk and its sftp:// URL."""
        relative = f"{name or 'box'}-{uuid.uuid4().hex[:8]}"
        path = self.root / relative
        path.mkdir(parents=True)
        return path, f"sftp://{USER}@127.0.0.1:{self.port}/{relative}"


def _serve(root: Path, ready: threading.Event, holder: dict[str, Any]) -> None:
    import asyncssh

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    logins: list[str] = []

    class Server(asyncssh.SSHServer):  # type: ignore[misc]
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            ok = username == USER and password == PASSWORD
            logins.append(f"{username}:password:{ok}")
            return ok

    async def start() -> Any:
        return await asyncssh.create_server(
            Server,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)),
            allow_scp=False,
        )

    server = loop.run_until_complete(start())
    port = server.sockets[0].getsockname()[1]
    public = host_key.export_public_key().decode().split()
    holder.update(
        server=server,
        loop=loop,
        info=SftpServer(
            root=root,
            port=port,
            host_key_line=f"[127.0.0.1]:{port} {public[0]} {public[1]}\n",
            client_key=client_key.export_private_key("openssh").decode(),
            logins=logins,
        ),
    )
    ready.set()
    loop.run_forever()
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    """One SFTP server on 127.0.0.1 for the session (asyncssh; nothing to install beyond the dev extra)."""
    root = tmp_path_factory.mktemp("sftp-root")
    ready = threading.Event()
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=_serve, args=(root, ready, holder), name="sftp-server", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the test SFTP server did not start in 30 s")
    yield holder["info"]
    holder["loop"].call_soon_threadsafe(holder["loop"].stop)
    thread.join(10)
