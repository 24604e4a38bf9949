"""``attestd ima``: Parse and replay IMA runtime measurement lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from attestd.cli.common import EXIT_NO, guarded, parse_hex, read_input
from attestd.errors import EvidenceError
from attestd.ima import Keyring, parse, verify_signatures
from attestd.ima.replay import DEFAULT_BANKS, IMA_PCR

app = typer.Typer(help="Parse and replay IMA runtime measurement lists.", no_args_is_help=True)

_BANK_BY_HEXLEN = {40: "sha1", 64: "sha256"}


def _pcr_value(text: str, bank: Optional[str]) -> tuple[str, bytes]:
    value = parse_hex(text, "pcr10", code="ima.replay.pcr_value")
    if bank is None:
        bank = _BANK_BY_HEXLEN.get(len(value) * 2)
        if bank is None:
            raise EvidenceError("ima.replay.pcr_value",
                                f"--pcr10 has {len(value)} bytes: give --bank for a {len(value)}-byte bank",
                                field="pcr10")
    return bank, value


def _bank_option(bank: Optional[str]) -> Optional[str]:
    if bank is None:
        return None
    name = bank.strip().lower().replace("-", "")
    if name not in DEFAULT_BANKS:
        raise EvidenceError("ima.replay.banks", f"--bank must be sha1 or sha256, not {bank!r}", field="bank")
    return name


@app.command("replay")
@guarded
def replay_cmd(
    file: Path = typer.Argument(..., help="binary_runtime_measurements or ascii_runtime_measurements ('-': stdin)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    pcr10: Optional[str] = typer.Option(None, "--pcr10", help="Quoted PCR10 value (hex): report the prefix that matches."),
    bank: Optional[str] = typer.Option(None, "--bank", help="Only this bank: sha1 or sha256."),
    sha1_padded: bool = typer.Option(False, "--sha1-padded",
                                     help="Kernel < 5.8: every bank was extended with the zero-padded SHA-1 hash."),
) -> None:
    """Replay the list into PCR values (SHA-1 and SHA-256 banks); exit 1 if --pcr10 matches no prefix."""
    bank = _bank_option(bank)
    log = parse(read_input(file))
    banks = (bank,) if bank else DEFAULT_BANKS
    pcrs = log.replay(banks=banks, sha1_padded=sha1_padded)
    match_bank = match_value = None
    matched: Optional[int] = None
    if pcr10 is not None:
        match_bank, match_value = _pcr_value(pcr10, bank)
        matched = log.matching_prefix(match_value, bank=match_bank, sha1_padded=sha1_padded)
    warnings = log.warnings()
    if as_json:
        out: dict = {
            "pcrs": {b: {str(i): v.hex() for i, v in vals.items()} for b, vals in pcrs.items()},
            "entries": len(log),
            "warnings": warnings,
        }
        if match_value is not None:
            out["match"] = {"bank": match_bank, "pcr10": match_value.hex(), "entries": matched}
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(f"entries: {len(log)} ({log.format})")
        for b, vals in pcrs.items():
            if not vals:
                typer.echo(f"{b:<7} pcr{IMA_PCR}: (not extended)")
            for i, v in vals.items():
                typer.echo(f"{b:<7} pcr{i}: {v.hex()}")
        for w in warnings:
            typer.echo(f"warning: {w}")
        if match_value is not None:
            if matched is None:
                typer.echo(f"{match_bank} pcr10 {match_value.hex()}: no prefix of the list replays to it")
            else:
                typer.echo(f"{match_bank} pcr10 {match_value.hex()}: matches the first {matched} of {len(log)} entries")
    if match_value is not None and matched is None:
        raise typer.Exit(EXIT_NO)


@app.command("show")
@guarded
def show_cmd(
    file: Path = typer.Argument(..., help="binary_runtime_measurements or ascii_runtime_measurements ('-': stdin)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    key: List[Path] = typer.Option([], "--key", help="Public key or certificate (PEM/DER) to verify file signatures."),
) -> None:
    """List the entries: PCR, template, template hash check, digest, name, signature."""
    log = parse(read_input(file))
    keyring = Keyring.from_keys([read_input(k, field="key") for k in key]) if key else None
    results = verify_signatures(log, keyring) if keyring is not None else None
    rows = []
    for n, e in enumerate(log.entries):
        d = e.digest
        row = {
            "index": e.index,
            "offset": e.offset,
            "pcr": e.pcr,
            "template": e.template_name,
            "template_hash": e.template_hash.hex(),
            "template_hash_ok": e.template_hash_ok,
            "violation": e.is_violation,
            "digest": None if d is None else str(d),
            "name": e.filename,
        }
        if e.signature is not None:
            row["sig"] = e.signature.hex()
        if e.buf is not None:
            row["buf"] = e.buf.hex()
        if results is not None:
            r = results[n]
            row["signature"] = {"status": r.status.value, "keyid": None if r.keyid is None else f"{r.keyid:08x}",
                                "code": r.code}
        rows.append(row)
    if as_json:
        typer.echo(json.dumps({"format": log.format, "byte_order": log.byte_order, "entries": rows,
                               "warnings": log.warnings()}, indent=2))
        return
    for row in rows:
        flag = "violation" if row["violation"] else ("ok" if row["template_hash_ok"] else "TEMPLATE HASH MISMATCH")
        line = f"{row['index']:>6} pcr{row['pcr']:<2} {row['template']:<10} {row['digest']} {row['name']} [{flag}]"
        if "signature" in row:
            s = row["signature"]
            line += f" sig={s['status']}" + (f"({s['keyid']})" if s["keyid"] else "")
        elif "sig" in row:
            line += " signed"
        typer.echo(line)
    for w in log.warnings():
        typer.echo(f"warning: {w}")
