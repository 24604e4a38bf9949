"""``attestd baseline``: learn a known-good host's measurements, compare another boot with them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from attestd.cli.common import EXIT_NO, guarded, read_input
from attestd.errors import EvidenceError

app = typer.Typer(help="Learn a known-good host's boot measurements and compare other boots with them.",
                  no_args_is_help=True)


def _logs(eventlog: Path, ima: Path | None):
    from attestd.eventlog import parse
    from attestd.ima import parse as parse_ima

    log = parse(read_input(eventlog, field="eventlog"))
    ima_log = parse_ima(read_input(ima, field="ima")) if ima is not None else None
    return log, ima_log


@app.command("learn")
@guarded
def learn_cmd(
    eventlog: Path = typer.Option(..., "--eventlog", help="Event log of a known-good boot."),
    ima: Path | None = typer.Option(None, "--ima", help="IMA measurement list of that host."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the baseline JSON ('-': stdout)."),
    name: str | None = typer.Option(None, "--name", help="A name for the baseline."),
    ima_allow_changed: list[str] = typer.Option([], "--ima-allow-changed", help="Glob of IMA paths whose digest may change (repeatable)."),
    ima_allow_new: bool = typer.Option(False, "--ima-allow-new", help="Accept IMA files the baseline has not seen."),
) -> None:
    """Record every measured event per PCR (type, digests, decoded meaning) with editable allowances."""
    from attestd.baseline import learn

    log, ima_log = _logs(eventlog, ima)
    baseline = learn(log, ima=ima_log, name=name, ima_allow_changed=tuple(ima_allow_changed),
                     ima_allow_new=ima_allow_new)
    text = json.dumps(baseline.to_json(), indent=2) + "\n"
    if str(out) == "-":
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        events = sum(len(v) for v in baseline.pcrs.values())
        typer.echo(f"baseline: {events} events in PCRs {sorted(baseline.pcrs)}"
                   + (f", {len(baseline.ima.files)} IMA files" if baseline.ima else "") + f" -> {out}")


@app.command("compare")
@guarded
def compare_cmd(
    baseline_file: Path = typer.Argument(..., help="Baseline JSON from 'attestd baseline learn'."),
    eventlog: Path = typer.Option(..., "--eventlog", help="Event log of the boot to check."),
    ima: Path | None = typer.Option(None, "--ima", help="IMA measurement list to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compare a boot with the baseline: exit 0 when it matches, 1 when not (each difference on one line)."""
    from attestd.baseline import Baseline, compare

    try:
        doc = json.loads(read_input(baseline_file, field="baseline"))
    except ValueError as exc:
        raise EvidenceError("baseline.invalid", f"the baseline is not JSON: {exc}", field="baseline") from None
    baseline = Baseline.from_json(doc)
    log, ima_log = _logs(eventlog, ima)
    result = compare(baseline, log, ima=ima_log)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    elif result.matches:
        typer.echo(f"match: PCRs {list(result.compared_pcrs)} are as in the baseline")
    else:
        typer.echo(f"{len(result.differences)} difference{'s' if len(result.differences) != 1 else ''}:")
        for d in result.differences:
            typer.echo(f"  {d.message}")
    if not result.matches:
        raise typer.Exit(EXIT_NO)
