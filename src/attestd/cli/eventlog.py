"""``attestd eventlog``: Parse, show and replay TCG PC Client firmware event logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attestd.cli.common import EXIT_NO, guarded, read_input
from attestd.errors import EvidenceError
from attestd.eventlog import Event, EventLog, parse
from attestd.eventlog.replay import HASH_ALGS_ORDER

app = typer.Typer(help="Parse, show and replay TCG PC Client firmware event logs.", no_args_is_help=True)

_SUMMARY_MAX = 120


def _decoded(event: Event) -> tuple[Any, EvidenceError | None]:
    """The decoded data of ``event`` or the EvidenceError that decoding raised (a per-event note)."""
    try:
        return event.decode(), None
    except EvidenceError as err:
        return None, err


def _bank_order(banks) -> list[str]:
    return sorted(banks, key=lambda b: (HASH_ALGS_ORDER.get(b, 99), b))


def _pcrs_json(values: dict[str, dict[int, bytes]]) -> dict[str, dict[str, str]]:
    return {bank: {str(pcr): values[bank][pcr].hex() for pcr in sorted(values[bank])}
            for bank in _bank_order(values)}


def _show_json(log: EventLog) -> dict[str, Any]:
    out = log.to_json()
    out["warnings"] = [w.to_json() for w in log.parse_warnings]
    events = []
    for event in log.events:
        item = event.to_json()
        decoded, err = _decoded(event)
        item["decoded"] = decoded.to_json() if decoded is not None else None
        if err is not None:
            item["decode_error"] = {"code": err.code, "message": err.message, "offset": err.offset}
        events.append(item)
    out["events"] = events
    return out


def _show_table(log: EventLog, console: Console) -> None:
    used = {bank for e in log.events[1:] for bank in e.digests} if log.spec_id else {"sha1"}
    banks = [b for b in log.banks if b in used] or list(log.banks[:1])
    prefix = 12 if len(banks) <= 2 else 8
    console.print(f"{log.format.value} event log: {len(log.events)} events, banks {', '.join(log.banks)}"
                  + (f", {log.padding} bytes of zero padding" if log.padding else ""))
    table = Table(show_lines=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("PCR", justify="right")
    table.add_column("Type")
    for bank in banks:
        table.add_column(bank)
    table.add_column("Data")
    for event in log.events:
        digests = [event.digests[b].hex()[:prefix] if b in event.digests else "-" for b in banks]
        decoded, err = _decoded(event)
        if err is not None:
            summary = Text(f"(cannot decode: {err})", style="red")
        else:
            text = decoded.summary()
            if len(text) > _SUMMARY_MAX:
                text = text[: _SUMMARY_MAX - 1] + "…"
            summary = Text(text)
        table.add_row(str(event.index), str(event.pcr), event.type_name, *digests, summary)
    console.print(table)
    for w in log.parse_warnings:
        console.print(f"warning: {w}", style="yellow", highlight=False)


@app.command("show")
@guarded
def show_cmd(
    file: Path = typer.Argument(..., help="binary_bios_measurements ('-': stdin)"),
    as_json: bool = typer.Option(False, "--json", help="Print every event with its decoded data as JSON."),
) -> None:
    """Show every event: number, PCR, type, digests and decoded data."""
    log = parse(read_input(file))
    if as_json:
        typer.echo(json.dumps(_show_json(log), indent=2))
        return
    _show_table(log, Console(soft_wrap=False, highlight=False))


def _load_expected(path: Path) -> dict:
    raw = read_input(path, field="expected")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceError("input.json", f"{path} is not JSON: {exc}", field="expected") from None
    if isinstance(doc, dict) and "pcrs" in doc:
        doc = doc["pcrs"]
    if not isinstance(doc, dict):
        raise EvidenceError("eventlog.expected_invalid", f"{path} must hold {{bank: {{pcr: hex}}}}",
                            field="expected")
    return doc


@app.command("replay")
@guarded
def replay_cmd(
    file: Path = typer.Argument(..., help="binary_bios_measurements ('-': stdin)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    expected: Optional[Path] = typer.Option(
        None, "--expected", help="JSON {\"pcrs\": {bank: {pcr: hex}}} to verify against; exit 1 on mismatch."),
    no_quirks: bool = typer.Option(False, "--no-quirks", help="Do not try known firmware quirks."),
) -> None:
    """Replay every bank into PCR values; with --expected, verify them and explain mismatches."""
    log = parse(read_input(file))
    if expected is None:
        values = log.replay()
        warnings = log.replay_warnings()
        if as_json:
            typer.echo(json.dumps({"pcrs": _pcrs_json(values), "warnings": [w.to_json() for w in warnings]},
                                  indent=2))
            return
        _print_values(values)
        for w in warnings:
            typer.echo(f"warning: {w}")
        return

    report = log.compare(_load_expected(expected), quirks=not no_quirks)
    if as_json:
        out = {"pcrs": _pcrs_json(report.pcrs), "warnings": [w.to_json() for w in report.warnings],
               "verification": {"ok": report.ok, "checks": [c.to_json() for c in report.checks],
                                "quirks_applied": [q.to_json() for q in report.quirks_applied]}}
        typer.echo(json.dumps(out, indent=2))
    else:
        _print_values(report.pcrs)
        for w in report.warnings:
            typer.echo(f"warning: {w}")
        counts: dict[str, int] = {}
        for c in report.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        typer.echo("verification: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for c in report.checks:
            if c.quirk:
                typer.echo(f"quirk: bank {c.bank} PCR {c.pcr} matches with {c.quirk}")
        for c in report.mismatches:
            typer.echo(f"MISMATCH {c.describe()}")
        typer.echo("OK: the log replays to the expected PCRs" if report.ok
                   else "FAIL: the log does not replay to the expected PCRs")
    if not report.ok:
        raise typer.Exit(EXIT_NO)


def _print_values(values: dict[str, dict[int, bytes]]) -> None:
    for bank in _bank_order(values):
        typer.echo(f"{bank}:")
        for pcr in sorted(values[bank]):
            typer.echo(f"  {pcr:<2} : 0x{values[bank][pcr].hex()}")
