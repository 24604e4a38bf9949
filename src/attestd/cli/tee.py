"""``attestd tee``: verify confidential-computing evidence (SEV-SNP, SGX, TDX, Azure confidential VMs).

``attestd tee verify --type sevsnp|sgx|tdx|azure-cvm EVIDENCE [--collateral DIR|FILE] [--vcek FILE]
[--ark FILE ...] [--root FILE] [--at TIME] [--runtime-data FILE] [--nonce HEX | --nonce-text TEXT]
[--ccel FILE] [--fetch [--cache-dir DIR] [--kds-url URL] [--pcs-url URL] [--root-crl-url URL]] [--json]``

* ``EVIDENCE``: a file (``-`` for stdin) in one of the formats of :mod:`attestd.tee.evidence`;
* ``--ark``: AMD ARK certificates, or KDS ``cert_chain`` bundles (ASK + ARK): self-signed
  certificates become trust anchors, the others intermediates;
* ``--root``: the Intel SGX Root CA;
* ``--collateral``: Intel collateral, a directory (:meth:`CollateralStore.from_dir`) or one
  ``QuoteCollateralV3`` JSON file; without it (and without ``--fetch``) Intel quotes are verified
  without TCB evaluation or revocation checks, and the output says so;
* ``--at``: verification time, ISO 8601 (a time without zone is UTC); default: now;
* ``--nonce`` / ``--nonce-text``: the challenge (vTPM extraData for ``azure-cvm``, REPORT_DATA
  zero-padded to 64 bytes otherwise);
* ``--fetch``: fetch missing VCEKs (AMD KDS) and Intel collateral (PCS) (:mod:`attestd.tee.fetch`).

Exit 0 when the evidence verifies; any failure is one ``error: <code>: ... (field ..., offset ...)``
line on stderr and exit 2 (with ``--json`` also ``{"verified": false, "error": <problem details>}``
on stdout).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from attestd.cli.common import EXIT_ERROR, fail, parse_hex, read_input
from attestd.errors import AttestdError, EvidenceError
from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.evidence import EvidenceType, TrustAnchors, VerifiedTee, verify_tee_evidence
from attestd.tee.fetch import (
    DEFAULT_AMD_KDS,
    DEFAULT_INTEL_PCS,
    DEFAULT_INTEL_ROOT_CA_CRL,
    CollateralFetcher,
    FetchConfig,
)

__all__ = ["EXIT_ERROR", "app"]

app = typer.Typer(help="Verify TEE evidence: SEV-SNP, SGX, TDX and Azure confidential VMs.", no_args_is_help=True)


@app.callback()
def _tee() -> None:
    """Verify TEE evidence: SEV-SNP, SGX, TDX and Azure confidential VMs."""


def parse_time(text: str) -> datetime:
    """ISO 8601 (``Z`` accepted); a value without a zone is UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise EvidenceError("input.time", f"--at is not an ISO 8601 time: {text!r}", field="at") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _collateral(path: Path) -> Collateral | CollateralStore:
    if path.is_dir():
        return CollateralStore.from_dir(path)
    return Collateral.from_qvl_json(read_input(path, "collateral"))


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out.append((prefix, json.dumps(value)))
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    else:
        out.append((prefix, str(value)))


def _render(result: VerifiedTee) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    tcb = f"; TCB status {result.tcb_status}" if result.tcb_status else ""
    console.print(f"[bold green]VERIFIED[/] {result.type.value} evidence ({result.input_format}) "
                  f"at {result.verified_at.isoformat()}{tcb}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    rows: list[tuple[str, str]] = []
    for key, value in result.claims.items():
        if key == "x-ms-isolation-tee" and isinstance(value, dict):
            for k, v in value.items():
                if k == "x-ms-runtime":
                    rows.append((f"{key}.{k}", json.dumps(v, separators=(",", ":"))))
                else:
                    _flatten(f"{key}.{k}", v, rows)
        elif key == "x-ms-runtime":
            rows.append((key, json.dumps(value, separators=(",", ":"))))
        else:
            _flatten(key, value, rows)
    width = max((len(k) for k, _ in rows), default=0)
    console.print("[bold]claims:[/]")
    for k, v in rows:
        console.print(f"  [cyan]{escape(k.ljust(width))}[/]  {escape(v)}")


@app.command("verify")
def verify(
    evidence: Path = typer.Argument(..., help="Evidence file ('-' for stdin)."),
    evidence_type: EvidenceType = typer.Option(..., "--type", "-t", help="Evidence type.", case_sensitive=False),
    collateral: Path | None = typer.Option(None, "--collateral", help="Intel collateral: directory or QVL JSON."),
    vcek: Path | None = typer.Option(None, "--vcek", help="VCEK/VLEK certificate (DER or PEM, may include ASK)."),
    ark: list[Path] = typer.Option([], "--ark", help="Trusted AMD ARK / KDS cert_chain file (repeatable)."),
    root: Path | None = typer.Option(None, "--root", help="Trusted Intel SGX Root CA certificate."),
    at: str | None = typer.Option(None, "--at", help="Verification time, ISO 8601 (default: now)."),
    runtime_data: Path | None = typer.Option(None, "--runtime-data", help="Runtime data bound in REPORT_DATA."),
    nonce: str | None = typer.Option(None, "--nonce", help="Expected nonce, hex."),
    nonce_text: str | None = typer.Option(None, "--nonce-text", help="Expected nonce, as UTF-8 text."),
    ccel: Path | None = typer.Option(None, "--ccel", help="TDX CCEL log to replay against RTMR0-3."),
    fetch: bool = typer.Option(False, "--fetch", help="Fetch missing VCEK / Intel collateral."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Collateral cache directory (with --fetch)."),
    kds_url: str = typer.Option(DEFAULT_AMD_KDS, "--kds-url", help="AMD KDS base URL."),
    pcs_url: str = typer.Option(DEFAULT_INTEL_PCS, "--pcs-url", help="Intel PCS base URL."),
    root_crl_url: str = typer.Option(DEFAULT_INTEL_ROOT_CA_CRL, "--root-crl-url", help="Intel Root CA CRL URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify TEE evidence and print the verdict and claims."""
    fetcher: CollateralFetcher | None = None
    try:
        if nonce is not None and nonce_text is not None:
            raise EvidenceError("input.nonce", "give --nonce or --nonce-text, not both", field="nonce")
        expected = parse_hex(nonce, "nonce") if nonce is not None else (
            nonce_text.encode() if nonce_text is not None else None)
        when = parse_time(at) if at is not None else datetime.now(UTC)
        anchors = TrustAnchors.load(amd=[read_input(p, "ark") for p in ark],
                                    intel_root=read_input(root, "root") if root is not None else None)
        if fetch:
            fetcher = CollateralFetcher(FetchConfig(amd_kds_url=kds_url, intel_pcs_url=pcs_url,
                                                    intel_root_ca_crl_url=root_crl_url, cache_dir=cache_dir))
        result = verify_tee_evidence(
            evidence_type,
            read_input(evidence, "evidence"),
            anchors=anchors,
            at=when,
            collateral=_collateral(collateral) if collateral is not None else None,
            vcek=read_input(vcek, "vcek") if vcek is not None else None,
            runtime_data=read_input(runtime_data, "runtime_data") if runtime_data is not None else None,
            nonce=expected,
            ccel=read_input(ccel, "ccel") if ccel is not None else None,
            fetcher=fetcher,
        )
    except (AttestdError, ValueError) as exc:
        err = exc if isinstance(exc, AttestdError) else EvidenceError("input.invalid", str(exc))
        if as_json:
            typer.echo(json.dumps({"verified": False, "error": err.to_problem()}, indent=2))
        raise fail(err) from None
    finally:
        if fetcher is not None:
            fetcher.close()
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        _render(result)
