"""erpsync.runtime.prefect_secrets: the Prefect resolver of prefect-secret: references, and who registers it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from erpsync.core.config import Secret, SecretError, secret_resolver
from erpsync.core.config import secrets as config_secrets
from erpsync.core.redact import redact
from erpsync.runtime.prefect_secrets import install_prefect_secret_resolver, load_prefect_secret

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_resolvers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_secrets, "_RESOLVERS", {})


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Prefect Secret blocks by name, served by a stand-in for ``Secret.load``."""
    from prefect.blocks.system import Secret as PrefectSecret

    stored: dict[str, Any] = {}

    def load(name: str, _sync: bool = False) -> Any:
        assert _sync, "must load synchronously"
        if name not in stored:
            raise ValueError(f"Unable to find block document named {name} for block type secret")
        return PrefectSecret(value=stored[name])

    monkeypatch.setattr(PrefectSecret, "load", staticmethod(load))
    return stored


@pytest.mark.usefixtures("no_resolvers")
def test_install_registers_the_prefect_resolver() -> None:
    assert secret_resolver("prefect-secret") is None
    install_prefect_secret_resolver()
    install_prefect_secret_resolver()
    assert secret_resolver("prefect-secret") is load_prefect_secret


@pytest.mark.usefixtures("no_resolvers")
def test_the_cli_registers_it() -> None:
    from erpsync.app.console import prepare_runtime_environment

    prepare_runtime_environment()
    assert secret_resolver("prefect-secret") is load_prefect_secret


def test_every_flow_run_has_it() -> None:
    code = (
        "import erpsync.runtime.store_runtime; from erpsync.core.config import secret_resolver; "
        "from erpsync.runtime.prefect_secrets import load_prefect_secret; "
        "assert secret_resolver('prefect-secret') is load_prefect_secret"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("no_resolvers")
def test_a_reference_reads_the_raw_string_of_its_block(blocks: dict[str, Any]) -> None:
    install_prefect_secret_resolver()
    blocks["mp-main-secret"] = SecretStr("0123-prefect-block-value")
    secret = Secret.parse("prefect-secret:mp-main-secret")
    assert not secret.resolved
    assert secret.get() == "0123-prefect-block-value"
    assert redact("sent 0123-prefect-block-value") == "sent ***"
    blocks["mp-digits"] = SecretStr("0123")  # Secret.get() would JSON-decode this to 123
    assert Secret.parse("prefect-secret:mp-digits").get() == "0123"


@pytest.mark.usefixtures("no_resolvers")
def test_a_missing_or_odd_block_is_a_secret_error(blocks: dict[str, Any]) -> None:
    install_prefect_secret_resolver()
    with pytest.raises(SecretError) as caught:
        Secret.parse("prefect-secret:mp-nowhere").get()
    assert str(caught.value) == (
        "secret prefect-secret:mp-nowhere: could not load the Prefect Secret block "
        "(ValueError: Unable to find block document named mp-nowhere for block type secret)"
    )
    blocks["mp-table"] = {"key": "value"}
    with pytest.raises(SecretError, match=r"\(TypeError: the Secret block does not hold a string\)$"):
        Secret.parse("prefect-secret:mp-table").get()
