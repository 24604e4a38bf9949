"""``attestd claims``: the claims a firmware event log (and IMA log) yields, as a table or JSON.

Without ``--pcrs`` the log is read on its own (replayed against itself): the output says
``provenance: self-replay`` - what the log *claims*, with nothing to prove it. With ``--pcrs`` (values
read from a TPM you trust) the log must replay to them and only the PCRs it matches are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from attestd.cli.common import guarded, read_input

__all__ = ["claims_cmd", "load_claim_set"]


def load_claim_set(eventlog: Path, ima: Path | None = None, pcrs: Path | None = None):
    """The :class:`~attestd.claims.ClaimSet` of a log file (shared with ``attestd policy eval``)."""
    from attestd.claims import build_claims, inspect_eventlog, verify_eventlog
    from attestd.tpm import parse_pcr_file

    log = read_input(eventlog, field="eventlog")
    ima_data = read_input(ima, field="ima") if ima is not None else None
    if pcrs is not None:
        evidence = verify_eventlog(log, parse_pcr_file(read_input(pcrs, field="pcrs")), ima_log=ima_data)
    else:
        evidence = inspect_eventlog(log, ima_log=ima_data)
    return build_claims(evidence)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return f"<json {len(json.dumps(value))} chars>"
    return str(value)


def claims_cmd(
    eventlog: Path = typer.Option(..., "--eventlog", help="Firmware event log (binary_bios_measurements)."),
    ima: Path | None = typer.Option(None, "--ima", help="IMA measurement list (binary or ASCII)."),
    pcrs: Path | None = typer.Option(None, "--pcrs", help="PCR values (JSON or tpm2_pcrread YAML) the log must replay to."),
    as_json: bool = typer.Option(False, "--json", help="Print every section as JSON."),
    with_events: bool = typer.Option(False, "--events", help="With --json: add the version 1.2 'events' and 'pcrs' claims."),
) -> None:
    """Show the claims an event log yields (Secure Boot, boot chain, Windows boot configuration, IMA)."""
    _run(eventlog, ima, pcrs, as_json, with_events)


@guarded
def _run(eventlog: Path, ima: Path | None, pcrs: Path | None, as_json: bool, with_events: bool) -> None:
    claims = load_claim_set(eventlog, ima, pcrs)
    if as_json:
        doc = claims.to_json()
        if with_events:
            doc["claims"] = claims.flat(("events", "pcrs", "ima"))
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = Console(soft_wrap=False)
    ev = claims.evidence
    console.print(f"provenance: [bold]{ev.provenance}[/bold]" + (
        "  (the log read on its own: nothing proves it; give --pcrs or attest through the service)"
        if ev.provenance == "self-replay" else ""))
    if ev.unverified_pcrs:
        console.print(f"ignored (log events in PCRs without a trusted value): {list(ev.unverified_pcrs)}")
    table = Table("claim", "value", show_lines=False)
    for name, value in claims.flat(()).items():
        table.add_row(name, _render(value))
    console.print(table)
    if claims.windows is not None:
        mods = claims.windows.to_json().get("loadedModules") or []
        if mods:
            console.print(f"{len(mods)} Windows loaded modules (see --json)")
    for w in ev.warnings:
        console.print(f"[yellow]warning[/yellow]: {w}")
