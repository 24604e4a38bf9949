"""``attestd quote``: Verify TPM 2.0 quotes, decode TPM structures, make credentials.

``attestd quote verify --ak AK --quote MSG --signature SIG --nonce HEX [--pcrs FILE] [--json]``

* ``--ak``: ``TPM2B_PUBLIC`` / ``TPMT_PUBLIC`` (``tpm2_createak -u``) or PEM/DER SubjectPublicKeyInfo;
* ``--quote``: the ``TPMS_ATTEST`` (``tpm2_quote -m``; a ``TPM2B_ATTEST`` is accepted too);
* ``--signature``: the ``TPMT_SIGNATURE`` (``tpm2_quote -s``, tss format);
* ``--nonce``: the expected extraData in hex (``""`` for none);
* ``--pcrs``: JSON ``{"sha256": {"0": "hex"}}`` (or a document with that under ``"pcrs"``, such as
  ``attestd eventlog replay --json``), or the YAML tpm2_pcrread / tpm2_quote print.

Exit 0 when the quote verifies; any failure is one ``error: <code>: ...`` line on stderr and exit 2
(with ``--json``, ``{"verified": false, "error": <problem details>}`` is also printed on stdout).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from attestd.cli.common import EXIT_ERROR, fail, guarded, parse_hex, read_input
from attestd.errors import AttestdError, EvidenceError
from attestd.tpm.attest import parse_attest
from attestd.tpm.constants import TPM_GENERATED_VALUE
from attestd.tpm.credential import make_credential
from attestd.tpm.pcrfile import parse_pcr_file
from attestd.tpm.public import load_signing_key, parse_public_any
from attestd.tpm.signature import parse_signature
from attestd.tpm.verify import QuoteResult, verify_quote

app = typer.Typer(help="Verify TPM 2.0 quotes.", no_args_is_help=True)


def _attest_bytes(data: bytes) -> bytes:
    """Accept a TPM2B_ATTEST by dropping its size when what follows is a TPMS_ATTEST."""
    if (len(data) >= 6 and int.from_bytes(data[:2], "big") == len(data) - 2
            and int.from_bytes(data[2:6], "big") == TPM_GENERATED_VALUE):
        return data[2:]
    return data


def _render(result: QuoteResult) -> str:
    ci = result.clock_info
    lines = [
        f"OK: quote verified ({result.signature.scheme_name}-{result.signature.hash_alg.name})",
        f"  selection:       {result.pcr_select}",
        f"  pcrDigest:       {result.pcr_digest.hex()}",
        "  pcrs:            " + ("match the supplied values" if result.pcrs_verified
                                 else "NOT checked (no --pcrs given)"),
        f"  extraData:       {result.extra_data.hex() or '(empty)'}",
        f"  clock:           {ci.clock} ms, resetCount {ci.reset_count}, restartCount {ci.restart_count}, "
        f"safe {'yes' if ci.safe else 'no'}",
        f"  firmwareVersion: 0x{result.firmware_version:016x}",
        f"  qualifiedSigner: {result.qualified_signer.hex()}",
    ]
    if result.ak_name is not None:
        lines.append(f"  AK name:         {result.ak_name.hex()}")
    return "\n".join(lines)


@app.command("verify")
def verify(
    ak: Path = typer.Option(..., "--ak", help="AK public key: TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER."),
    quote: Path = typer.Option(..., "--quote", help="TPMS_ATTEST (tpm2_quote -m)."),
    signature: Path = typer.Option(..., "--signature", help="TPMT_SIGNATURE (tpm2_quote -s)."),
    nonce: str = typer.Option(..., "--nonce", help="Expected extraData, hex ('' for none)."),
    pcrs: Path | None = typer.Option(None, "--pcrs", help="PCR values: JSON or tpm2_pcrread YAML."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify a TPM2_Quote: magic, type, AK signature, nonce and (with --pcrs) the PCR digest."""
    try:
        ak_key = load_signing_key(read_input(ak, "ak"))
        quote_bytes = _attest_bytes(read_input(quote, "quote"))
        sig = parse_signature(read_input(signature, "signature"))
        expected_nonce = parse_hex(nonce, "nonce")
        values = parse_pcr_file(read_input(pcrs, "pcrs")) if pcrs is not None else None
        result = verify_quote(ak_key, quote_bytes, sig, nonce=expected_nonce, pcrs=values)
    except AttestdError as err:
        if as_json:
            typer.echo(json.dumps({"verified": False, "error": err.to_problem()}, indent=2))
        raise fail(err) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(_render(result))


@app.command("show")
@guarded
def show(
    file: Path = typer.Argument(..., help="TPMS_ATTEST, TPMT_SIGNATURE or TPM2B_PUBLIC/TPMT_PUBLIC."),
    kind: str = typer.Option("attest", "--type", "-t", help="attest, signature or public."),
) -> None:
    """Decode a TPM structure and print it as JSON."""
    data = read_input(file, "file")
    if kind == "attest":
        doc = parse_attest(_attest_bytes(data)).to_json()
    elif kind == "signature":
        doc = parse_signature(data).to_json()
    elif kind == "public":
        doc = parse_public_any(data).to_json()
    else:
        raise EvidenceError("input.type", f"unknown --type {kind!r} (attest, signature, public)", field="type")
    typer.echo(json.dumps(doc, indent=2))


@app.command("make-credential")
@guarded
def make_credential_cmd(
    ek: Path = typer.Option(..., "--ek", help="EK public area (TPM2B_PUBLIC / TPMT_PUBLIC) or PEM/DER key."),
    name: str = typer.Option(..., "--name", help="AK Name: hex, or a file holding it (tpm2_createak -n)."),
    secret: str = typer.Option(..., "--secret", help="Secret to protect, hex."),
    out: Path = typer.Option(..., "--out", "-o", help="tpm2-tools credential file for tpm2_activatecredential."),
) -> None:
    """TPM2_MakeCredential in software, writing tpm2-tools' credential file format."""
    ek_data = read_input(ek, "ek")
    stripped = ek_data.lstrip()
    ek_arg = load_signing_key(ek_data).key if stripped[:10] == b"-----BEGIN" or ek_data[:1] == b"\x30" else ek_data
    name_path = Path(name)
    ak_name = read_input(name_path, "name") if name_path.is_file() else parse_hex(name, "name")
    cred = make_credential(ek_arg, ak_name, parse_hex(secret, "secret"))
    try:
        out.write_bytes(cred.to_tpm2_tools())
    except OSError as exc:
        raise EvidenceError("output.unwritable", f"cannot write {out}: {exc.strerror}", field="out") from None
    typer.echo(f"wrote {out}")


__all__ = ["EXIT_ERROR", "app"]
