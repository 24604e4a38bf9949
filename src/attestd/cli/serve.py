"""``attestd serve`` and ``attestd audit``.

Register in ``attestd.cli.main``::

    from attestd.cli import serve
    app.command("serve")(serve.serve)
    app.add_typer(serve.audit_app, name="audit")

``python -m attestd.cli.serve serve|audit ...`` runs the same commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

__all__ = ["app", "audit_app", "serve", "worker_app"]

_CONFIG = typer.Option(None, "--config", "-c", help="TOML configuration file.", exists=True, dir_okay=False)
_DATA = typer.Option(None, "--data-dir", help="Data directory (default ./var/attestd).")
_DB = typer.Option(None, "--database-url", help="SQLAlchemy URL (default SQLite in the data dir).")


def _settings(config: Path | None, **overrides):
    from attestd.service.config import load_settings

    return load_settings(config, **overrides)


def _fail(exc: Exception) -> None:
    from attestd.errors import AttestdError

    if isinstance(exc, AttestdError):
        typer.echo(f"attestd: {exc}", err=True)
        raise typer.Exit(2)
    raise exc


def serve(
    config: Path | None = _CONFIG,
    host: str | None = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", "-p", help="Listen port (default 8080)."),
    data_dir: Path | None = _DATA,
    database_url: str | None = _DB,
    public_url: str | None = typer.Option(None, "--public-url", help="URL clients use (issuer base)."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default 1)."),
) -> None:
    """Run the attestation service (FastAPI on uvicorn) until SIGINT/SIGTERM."""
    import uvicorn

    from attestd.service.app import create_app
    from attestd.service.observability import configure_logging

    overrides = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
                 "public_url": public_url, "workers": workers}
    try:
        settings = _settings(config, **overrides)
        configure_logging(settings.log_level, settings.log_json)
        if settings.workers > 1:
            _serve_workers(settings, config, overrides)
            return
        app = create_app(settings, warm=True)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    server = uvicorn.Server(uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds, server_header=False))
    server.run()
    if not server.started:
        raise typer.Exit(1)


def _serve_workers(settings, config: Path | None, overrides: dict) -> None:
    """Several worker processes on one port: uvicorn's supervisor, each worker uvloop + httptools on
    one thread, all accepting from the one listening socket. The database is migrated and the
    default tenant bootstrapped once, here, before the workers start (they would race on a fresh
    SQLite file); each worker then builds the app from the same settings (``ATTESTD_*`` variables).

    Why not granian (used before): its workers take connections by ``SO_REUSEPORT``, which the
    kernel spreads by address hash whether a worker is busy or not, and a connection then waits
    behind that worker's attestation. On a shared socket the worker that is idle in ``epoll``
    takes it. Measured with bench/load/fleet_bench.py, 2 workers, hosts arriving at 300/s on new
    connections, three interleaved runs each: p99 73-80 ms on uvicorn, 190-259 ms on granian,
    and 5.0 against 5.3 ms of server CPU per host cycle."""
    import os

    import uvicorn

    from attestd.service.app import bootstrap, open_state

    state = open_state(settings)
    try:
        bootstrap(state)
    finally:
        state.store.close()
    for name, value in overrides.items():
        if value is not None:
            os.environ["ATTESTD_" + name.upper()] = str(value)
    if config is not None:
        os.environ[_CONFIG_ENV] = str(config)
    uvicorn.run("attestd.cli.serve:worker_app", factory=True, workers=settings.workers, host=settings.host,
                port=settings.port, log_config=None, access_log=False, proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=settings.shutdown_timeout_seconds)


_CONFIG_ENV = "ATTESTD_CONFIG_FILE"


def worker_app():
    """The app of one worker process (uvicorn factory; see :func:`_serve_workers`)."""
    import os

    from attestd.service.app import create_app
    from attestd.service.observability import configure_logging

    settings = _settings(os.environ.get(_CONFIG_ENV) or None)
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings, warm=True)


audit_app = typer.Typer(help="Attestation records: list, show, re-verify.", no_args_is_help=True)


def _state(config, data_dir, database_url):
    from attestd.service.app import open_state

    state = open_state(_settings(config, data_dir=data_dir, database_url=database_url))
    state.store.migrate()
    return state


@audit_app.command("reverify")
def audit_reverify(
    attestation_id: str = typer.Argument(..., help="Attestation id (x-attestd-attestation-id)."),
    config: Path | None = _CONFIG,
    data_dir: Path | None = _DATA,
    database_url: str | None = _DB,
) -> None:
    """Re-run verification on stored evidence; exit 0 when the decision is the same, 1 when not."""
    from attestd.service.audit import reverify

    try:
        state = _state(config, data_dir, database_url)
        report = reverify(state, attestation_id)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(0 if report["same"] else 1)


@audit_app.command("list")
def audit_list(
    tenant: str = typer.Option("default", "--tenant", "-t"),
    limit: int = typer.Option(20, "--limit", "-n"),
    config: Path | None = _CONFIG,
    data_dir: Path | None = _DATA,
    database_url: str | None = _DB,
) -> None:
    """Recent attestations of a tenant, newest first (one JSON object per line)."""
    try:
        state = _state(config, data_dir, database_url)
        rows = state.store.list_attestations(tenant, limit=limit)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    for a in rows:
        typer.echo(json.dumps({"id": a.id, "createdAt": a.created_at.isoformat(), "outcome": a.outcome,
                               "errorCode": a.error_code, "policyHash": a.policy_hash, "jti": a.token_jti}))


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command("serve")(serve)
app.add_typer(audit_app, name="audit")

if __name__ == "__main__":
    sys.exit(app())
