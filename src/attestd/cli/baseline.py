"""``attestd baseline``: learn a known-good host's measurements, compare another boot with them.

::

    attestd baseline learn --eventlog FILE [--ima FILE] -o BASELINE.json [--allow boot-order] [--ignore-pcr 8]
    attestd baseline compare BASELINE.json --eventlog FILE [--ima FILE] [--json]

``compare`` exits 0 when the host matches, 1 when it does not (one line per difference), 2 on bad
input (an unreadable log, a baseline that is not a valid document: ``baseline.invalid``).
"""

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
    eventlog: Path = typer.Option(..., "--eventlog", help="Event log of a known-good boot (binary_bios_measurements)."),
    ima: Path | None = typer.Option(None, "--ima", help="IMA measurement list of that host (binary or ASCII)."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the baseline JSON ('-': stdout)."),
    name: str | None = typer.Option(None, "--name", help="A name for the baseline."),
    allow: list[str] = typer.Option([], "--allow", help="Add a preset allowance (repeatable): "
                                    "boot-order, boot-options, gpt, handoff-tables."),
    ignore_pcr: list[int] = typer.Option([], "--ignore-pcr", help="Do not compare this PCR (repeatable)."),
    ima_allow_changed: list[str] = typer.Option([], "--ima-allow-changed",
                                                help="Glob of IMA paths whose digest may change (repeatable)."),
    ima_allow_new: bool = typer.Option(False, "--ima-allow-new", help="Accept IMA files the baseline has not seen."),
) -> None:
    """Record every measured event per PCR (type, digests, decoded meaning) with editable allowances.

    No allowance is added by default: two boots of one image measure identical logs.
    """
    from attestd.baseline import Allowances, learn

    for p in ignore_pcr:
        if not 0 <= p < 32:
            raise EvidenceError("input.invalid", f"--ignore-pcr {p}: expected a PCR number 0-31", field="ignore-pcr")
    if ima is None and (ima_allow_changed or ima_allow_new):
        raise EvidenceError("input.invalid", "--ima-allow-changed and --ima-allow-new need --ima", field="ima")
    allowances = Allowances.preset(*allow, ignore_pcrs=tuple(ignore_pcr))
    log, ima_log = _logs(eventlog, ima)
    baseline = learn(log, ima=ima_log, name=name, allowances=allowances,
                     ima_allow_changed=tuple(ima_allow_changed), ima_allow_new=ima_allow_new)
    text = json.dumps(baseline.to_json(), indent=2) + "\n"
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise EvidenceError("input.unreadable", f"cannot write {out}: {exc.strerror}", field="output") from None
    events = sum(len(v) for v in baseline.pcrs.values())
    rules = len(baseline.allowances.any_digest)
    typer.echo(f"baseline: {events} events in PCRs {sorted(baseline.pcrs)}"
               + (f", {len(baseline.ima.files)} IMA files" if baseline.ima else "")
               + f"; allowances: {rules} anyDigest rule{'s' if rules != 1 else ''}"
               + (f", ignored PCRs {list(baseline.allowances.ignore_pcrs)}" if baseline.allowances.ignore_pcrs else "")
               + f" -> {out}")


def load_baseline(path: Path):
    """A :class:`~attestd.baseline.Baseline` from a JSON file; anything wrong is ``baseline.invalid``."""
    from attestd.baseline import Baseline

    raw = read_input(path, field="baseline")
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError (with its byte position) or UnicodeDecodeError
        raise EvidenceError("baseline.invalid", f"$: {path} is not JSON: {exc}", field="$",
                            offset=getattr(exc, "pos", None)) from None
    return Baseline.from_json(doc)


@app.command("compare")
@guarded
def compare_cmd(
    baseline_file: Path = typer.Argument(..., help="Baseline JSON from 'attestd baseline learn'."),
    eventlog: Path = typer.Option(..., "--eventlog", help="Event log of the boot to check."),
    ima: Path | None = typer.Option(None, "--ima", help="IMA measurement list to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compare a boot with the baseline: exit 0 when it matches, 1 when not (each difference on one line).

    Compare only logs you have verified against a quote: this command trusts them.
    """
    from attestd.baseline import compare

    baseline = load_baseline(baseline_file)
    log, ima_log = _logs(eventlog, ima)
    result = compare(baseline, log, ima=ima_log)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    elif result.matches:
        ima_note = " and the IMA-measured files" if result.ima_compared else ""
        typer.echo(f"match: PCRs {list(result.compared_pcrs)}{ima_note} are as in the baseline")
    else:
        n = len(result.differences)
        typer.echo(f"{n} difference{'s' if n != 1 else ''} from the baseline:")
        for d in result.differences:
            typer.echo(f"  {d.message}")
    if not as_json and ima_log is not None and not result.ima_compared:
        typer.echo("note: the baseline has no IMA files, so the IMA list was not compared")
    if not result.matches:
        raise typer.Exit(EXIT_NO)
