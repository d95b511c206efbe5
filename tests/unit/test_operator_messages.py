"""What an operator reads: one-line errors naming the system, its address and a next step; state messages of
partially failed and held runs; the open-failures rows and their retry commands; short tracebacks. No Prefect
server, no HTTP."""

from __future__ import annotations

import datetime as dt
import logging
import pickle

import httpx
import pytest

from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    RateLimitedError,
    RetriableError,
    RunStopped,
    explain,
)
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.core.state import Failure
from erpsync.core.summary import RunState, RunSummary
from erpsync.runtime.logs import ShortConnectorTracebacks
from erpsync.runtime.open_failures import OpenFailures, artifact_key_for, retry_command
from erpsync.runtime.states import final_state, is_partial, state_message, summary_of


def _refused() -> RetriableError:
    error = RetriableError("tryton", "cannot connect: [Errno 111] Connection refused", method="POST", path="/rpc/")
    error.not_sent = True
    error.address = "http://127.0.0.1:8000"
    return error


def test_a_refused_connection_names_the_system_its_address_and_the_next_step() -> None:
    line = explain(_refused())
    assert line.startswith("Tryton at http://127.0.0.1:8000 refused the connection: is it running")
    assert "`erpsync check`" in line and line.endswith(
        "[tryton POST /rpc/: cannot connect: [Errno 111] Connection refused]"
    )
    assert "\n" not in line


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (AuthError("merchantpro", "authentication refused: bad key", status=401), "refused the credentials"),
        (RetriableError("merchantpro", "timed out (ReadTimeout)"), "did not answer in time"),
        (RetriableError("smartbill", "bad gateway", status=502), "the next run tries again"),
        (RateLimitedError("merchantpro", "rate limited: slow down", status=429), "lower `requests_per_second`"),
        (BadRequestError("oblio", "unknown filter", status=400), "refused a request"),
    ],
)
def test_each_kind_of_error_says_what_to_do(error: ConnectorError, says: str) -> None:
    line = explain(error)
    assert says in line and error.detail() in line
    assert line.split(" ")[0] in {"MerchantPro", "SmartBill", "Oblio"}


def test_an_explained_error_reads_as_its_explanation_and_survives_pickling() -> None:
    error = _refused()
    technical = str(error)
    error.explained = explain(error)
    assert str(error) == error.explained and technical in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, RetriableError) and str(copy) == error.explained and copy.not_sent
    assert explain(ValueError("bad\n value")) == "ValueError: bad value"


def test_the_http_layer_puts_the_address_on_its_errors_never_credentials() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = HttpClient(
        "tryton",
        "http://admin:secret@127.0.0.1:8000/erpsync/",
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(max_retries=0),
    )
    with pytest.raises(RetriableError) as caught:
        client.request("POST", "rpc/")
    assert caught.value.address == "http://127.0.0.1:8000"
    assert explain(caught.value).startswith("Tryton at http://127.0.0.1:8000 refused the connection")


def _summary(**fields: object) -> RunSummary:
    return RunSummary(flow="orders", store="main", created=1, **fields)  # type: ignore[arg-type]


def test_state_messages_of_partial_held_and_failed_runs() -> None:
    partial = final_state(_summary(failed=2))
    assert partial.is_failed() and partial.name == "Failed" and is_partial(partial)
    assert partial.message is not None and partial.message.startswith("Partially failed: 2 record(s) failed")
    assert "`erpsync failures list --store main`" in partial.message
    held = _summary(open_failures="1 held for a person: `erpsync failures list --store main`")
    completed = final_state(held)
    assert completed.is_completed() and not is_partial(completed) and completed.name == "Completed"
    assert completed.message is not None and "store main: 1 held for a person" in completed.message
    failed = final_state(_summary(state=RunState.FAILED, message="MerchantPro at http://x has no order '1'"))
    assert (
        failed.is_failed() and not is_partial(failed) and failed.message == "MerchantPro at http://x has no order '1'"
    )
    skipped = final_state(_summary(state=RunState.SKIPPED, message="another run", open_failures="2 retrying: x"))
    assert skipped.is_completed() and skipped.name == "Completed"  # a custom name is missing from the Runs tab
    assert skipped.message == "Skipped: another run; store main: 2 retrying: x"
    assert state_message(_summary(state=RunState.SKIPPED, message="m")) == "Skipped: m"


def test_summary_of_returns_the_summary_of_a_partial_run_and_raises_a_real_failure() -> None:
    summary = _summary(failed=1)
    assert summary_of(final_state(summary)) is summary
    from prefect.states import Failed

    with pytest.raises(ValueError, match="boom"):
        summary_of(Failed(data=ValueError("boom")))


def _failure(entity: str, key: str = "10234") -> Failure:
    now = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
    return Failure(1, "main", entity, key, "x", None, 1, now, now, False, None)


def test_every_open_failure_has_the_exact_command_that_retries_it() -> None:
    assert retry_command(_failure("order")) == "erpsync resync-order --store main 10234"
    assert retry_command(_failure("stock", "SKU-1")) == "erpsync failures retry --store main --entity stock SKU-1"
    assert retry_command(_failure("order_edit")).startswith("erpsync failures resolve --store main --entity order_edit")
    assert retry_command(_failure("product", "A")).startswith("erpsync run products --store main")
    assert "erpsync failures dismiss" in retry_command(_failure("something_new"))
    assert artifact_key_for("Bucuresti Nord") == "open-failures-bucuresti-nord"


def test_the_note_counts_held_and_retrying() -> None:
    assert OpenFailures("main").note() == ""
    report = OpenFailures("main", [{"status": "held"}, {"status": "held"}, {"status": "retrying"}])
    assert report.note() == (
        "2 held for a person, 1 retrying: `erpsync failures list --store main` (artifact open-failures-main)"
    )


def test_a_connector_error_is_logged_without_its_traceback_other_errors_keep_theirs() -> None:
    def raised(error: Exception) -> logging.LogRecord:
        try:
            raise error
        except Exception:
            import sys

            return logging.LogRecord(
                "prefect.flow_runs", logging.ERROR, __file__, 1, "failed: %r", (error,), sys.exc_info()
            )

    error = _refused()
    error.explained = explain(error)
    record = raised(error)
    assert ShortConnectorTracebacks().filter(record) and record.exc_info is None
    text = record.getMessage()
    assert "Tryton at http://127.0.0.1:8000 refused the connection" in text and "(raised at " in text
    other = raised(KeyError("k"))
    ShortConnectorTracebacks().filter(other)
    assert other.exc_info is not None
    stopped = raised(RunStopped("ERP snapshot refused by the guard, nothing written"))
    assert ShortConnectorTracebacks().filter(stopped) and stopped.exc_info is None
    assert explain(RunStopped("refused by\n the guard")) == "refused by the guard"
