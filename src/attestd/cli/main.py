"""The ``attestd`` command.

Each concern contributes a sub-application from its own module (``attestd.cli.eventlog``, ...);
this module only assembles them.
"""

from __future__ import annotations

import typer

from attestd import __version__
from attestd.cli import baseline, claims, eventlog, fleet, ima, policy, quote, serve, tee

app = typer.Typer(
    name="attestd",
    help="Attestd: remote attestation for TPM 2.0 hosts and confidential-computing guests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(eventlog.app, name="eventlog")
app.add_typer(ima.app, name="ima")
app.add_typer(quote.app, name="quote")
app.add_typer(policy.app, name="policy")
app.add_typer(tee.app, name="tee")
app.command("claims")(claims.claims_cmd)
app.add_typer(baseline.app, name="baseline")
app.add_typer(fleet.agent_app, name="agent")
app.add_typer(fleet.hosts_app, name="hosts")
app.add_typer(fleet.incidents_app, name="incidents")
app.command("serve")(serve.serve)
app.add_typer(serve.audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attestd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Attestd command line."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
