"""The ``erpsync`` command.

Start-up stays light (``erpsync --help`` answers in well under a second): Prefect, pandas, the connectors and
Great Expectations are imported inside the commands that need them, never at module level.

Exit codes: 0 success, 1 a run or probe failed, 2 bad configuration or usage, 3 a run partially failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from erpsync.app.alerts import register_alerts_commands
from erpsync.app.console import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    fail,
    prepare_runtime_environment,
    run_and_exit,
    settings_or_exit,
)
from erpsync.app.history import register_history_command
from erpsync.app.manual import register_manual_commands

app = typer.Typer(
    name="erpsync",
    help="Keep an ERP and MerchantPro online shops consistent: products, prices, stock and orders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_manual_commands(app)  # `erpsync failures list|retry` and `erpsync resync-order`
register_history_command(app)  # `erpsync stock-history SKU`
register_alerts_commands(app)  # `erpsync alerts apply|test`


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration and probe every system: reachable and authenticated."""
    prepare_runtime_environment()
    settings = settings_or_exit(config)
    from erpsync.app.probe import probe_all
    from erpsync.app.probe_alerts import alert_probes

    results = probe_all(settings) + alert_probes(settings)
    width = max(len(r.target) for r in results)
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        typer.echo(f"{mark} {result.target:<{width}}  {result.detail}")
    failed = [r for r in results if not r.ok]
    if failed:
        fail(f"{len(failed)} of {len(results)} checks failed", EXIT_FAILED)
    source = settings.path or settings.source
    typer.echo(f"configuration {source}: {len(settings.stores)} store(s), ERP {settings.erp.type}; all checks passed")


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param {pair!r}: expected key=value", EXIT_CONFIG)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@app.command()
def run(
    flow: Annotated[
        str,
        typer.Argument(
            help=(
                "products | stock | reconcile | receipts | orders | customers | purchases | prune | resync-order"
                " | retry-failures | watch"
            )
        ),
    ],
    store: Annotated[str | None, typer.Option("--store", "-s", help="Store name (default: every store).")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Extra flow parameter key=value (JSON values).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run one flow now for one store (or each store in turn) and print its summary."""
    prepare_runtime_environment()
    settings = settings_or_exit(config, store)
    stores = [store] if store else [s.name for s in settings.stores]
    run_and_exit(flow, stores, _parse_params(param or []), as_json)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Leave the servers running until Ctrl-C.")] = False,
) -> None:
    """Start simulated shops (and the demo ERP), then check and sync them end to end."""
    prepare_runtime_environment()
    from erpsync.app.demo import run_demo

    raise typer.Exit(run_demo(keep=keep))


@app.command()
def serve(
    port: Annotated[
        int, typer.Option(help="Port of the local Prefect server started when PREFECT_API_URL is not set.")
    ] = 4200,
    config: ConfigOption = None,
) -> None:
    """Serve every flow for every configured store on its schedule (Prefect ``serve``; no work pool).

    With PREFECT_API_URL set, the deployments go to that server. Without it, a local ``prefect server start``
    (database in PREFECT_HOME) runs beside them until this command ends: Prefect's temporary server has no
    scheduler, so schedules would never fire there.
    """
    prepare_runtime_environment()
    settings = settings_or_exit(config)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from erpsync.app.deployments import serve_all

    if PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        serve_all(settings)
        return
    from erpsync.app.prefect_server import PrefectServerError, start_prefect_server

    home = Path(os.environ["PREFECT_HOME"])
    typer.echo(f"PREFECT_API_URL is not set: starting a local Prefect server on 127.0.0.1:{port} (home {home})")
    try:
        server = start_prefect_server(
            home, port=port, database_url=os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
        )
    except PrefectServerError as error:
        fail(str(error))
    typer.echo(
        f"Prefect UI: {server.url}  (API {server.api_url}, ready in {server.start_seconds:.0f} s, "
        f"log {server.log_path}); Ctrl-C stops serving and the server"
    )
    os.environ["PREFECT_API_URL"] = server.api_url  # for the flow-run processes serve starts
    from erpsync.app.prefect_api import remove_marker, write_marker

    write_marker(server.api_url, home)  # `erpsync run` sends its runs here while this serves
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            serve_all(settings)
    finally:
        remove_marker(home)
        server.stop()


@app.command()
def webhooks(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 behind a reverse proxy).")] = "127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """Receive MerchantPro webhooks at /webhooks/<store> (and Oblio's stock notices): verify, then re-read."""
    prepare_runtime_environment()
    settings = settings_or_exit(config)
    from erpsync.app.webhooks import (
        Dispatcher,
        StockDispatcher,
        create_app,
        oblio_webhook_secret,
        run_order_trigger,
        run_orders_trigger,
        run_stock_trigger,
    )

    enabled = [s.name for s in settings.stores if s.webhook_secret is not None]
    oblio = oblio_webhook_secret(settings) is not None
    if not enabled and not oblio:
        fail("no store has a webhook_secret: set [[stores]].webhook_secret to receive webhooks", EXIT_CONFIG)
    import uvicorn

    dispatcher = Dispatcher(run_order_trigger, run_orders_trigger)
    stock = StockDispatcher(run_stock_trigger, [s.name for s in settings.stores]) if oblio else None
    if enabled:
        typer.echo(f"receiving webhooks for {', '.join(enabled)} at http://{host}:{port}/webhooks/<store>")
    if oblio:
        typer.echo(
            f"receiving Oblio stock notices at http://{host}:{port}/webhooks/erp/oblio?key=<[erp] webhook_secret> "
            "(register that URL, with the secret, with Oblio: topic stock)"
        )
    try:
        uvicorn.run(create_app(settings, dispatcher, stock=stock), host=host, port=port, log_level="warning")
    finally:
        dispatcher.stop()
        if stock is not None:
            stock.stop()


@app.command("prefect-yaml")
def prefect_yaml_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it ('-' = stdout).")] = Path(
        "prefect.yaml"
    ),
    work_pool: Annotated[str, typer.Option(help="The process work pool the deployments run on.")] = "erpsync",
    project_dir: Annotated[str, typer.Option(help="The project folder on the worker machines.")] = ".",
    config: ConfigOption = None,
) -> None:
    """Write prefect.yaml: every flow x store with its schedule, for `prefect deploy --all`."""
    settings = settings_or_exit(config)
    from erpsync.app.deployments import deployment_specs, prefect_yaml

    text = prefect_yaml(settings, work_pool=work_pool, project_dir=project_dir)
    if str(output) == "-":
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        count = len(deployment_specs(settings))
        typer.echo(f"wrote {output}: {count} deployments on work pool {work_pool!r}")
    prepare_runtime_environment()
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        # The workers' shared per-store shop rate limits live on the server the deployments go to.
        from erpsync.runtime.ratelimit import ensure_rate_limits

        names = ensure_rate_limits(settings)
        typer.echo(
            f"global concurrency limits (shop rate limits) on {PREFECT_API_URL.value()}: " + ", ".join(names),
            err=str(output) == "-",
        )
        if settings.alerts is not None:  # [alerts]: the automations live on the same server
            from erpsync.core.config import ConfigError
            from erpsync.runtime.alerts import apply_alerts

            try:
                typer.echo("alerts: " + "; ".join(apply_alerts(settings)), err=str(output) == "-")
            except ConfigError as error:
                fail(str(error), EXIT_CONFIG)
    else:
        typer.echo(
            "PREFECT_API_URL is not set: run this again with it set to create the shared shop rate limits", err=True
        )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit as done:
        leave(done)


def leave(done: SystemExit) -> None:
    """Exit with ``done``'s code. After a command that ran flows, skip the interpreter's tear-down of the
    thousands of modules Prefect brings (~0.25 s of a CLI run that took 2.5): the exit handlers run first (Prefect
    sends its last logs and events, logging closes its files), then the process ends. Any non-daemon thread still
    alive, or a Python without ``atexit._run_exitfuncs``, gets the ordinary exit."""
    import atexit
    import contextlib
    import threading

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "prefect" not in sys.modules or run_exit_handlers is None or others:
        raise done
    code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # as sys.exit("message") would
        code = 1
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
