"""``attestd policy``: check, evaluate, hash and sign attestation policies (Azure policy language)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from attestd.cli.common import EXIT_NO, guarded, read_input
from attestd.errors import EvidenceError

app = typer.Typer(
    help="Check, evaluate, hash and sign attestation policies (Azure policy language 1.0-1.2).",
    no_args_is_help=True,
)
builtin_app = typer.Typer(help="The built-in policies.", no_args_is_help=True)
app.add_typer(builtin_app, name="builtin")


def _text(path: Path) -> str:
    data = read_input(path, field="policy")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise EvidenceError(
            "policy.encoding", f"{path} is not UTF-8 (byte {exc.start})", field="policy"
        ) from None


def _compile(text: str):
    from attestd.policy import compile_policy

    return compile_policy(text)


@app.command("check")
@guarded
def check_cmd(file: Path = typer.Argument(..., help="Policy text file ('-': stdin).")) -> None:
    """Parse and check a policy; errors name line and column (exit 2)."""
    policy = _compile(_text(file))
    sections = ", ".join(f"{s.name} ({len(s.rules)} rules)" for s in policy.ast.sections)
    typer.echo(f"ok: version {policy.version}; {sections}")
    typer.echo(f"hash: {policy.hash}")
    props = policy.configuration.as_properties()
    typer.echo("configuration: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in props.items()))


@app.command("eval")
@guarded
def eval_cmd(
    policy_file: Optional[Path] = typer.Option(None, "--policy", help="Policy text file."),
    builtin: Optional[str] = typer.Option(None, "--builtin", help="A built-in policy instead of --policy."),
    claims_file: Optional[Path] = typer.Option(
        None, "--claims", help='Claims JSON: {"type": value} or [{"type","value","issuer"}].'
    ),
    eventlog: Optional[Path] = typer.Option(None, "--eventlog", help="Firmware event log: evaluate the claims it yields."),
    pcrs: Optional[Path] = typer.Option(None, "--pcrs", help="With --eventlog: PCR values the log must replay to."),
    ima: Optional[Path] = typer.Option(None, "--ima", help="With --eventlog: IMA measurement list."),
    aik_validated: bool = typer.Option(
        False, "--aik-validated", help="With --eventlog: treat the AK as validated (an offline log has no AK)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    no_trace: bool = typer.Option(False, "--no-trace", help="Leave the rule-by-rule trace out."),
) -> None:
    """Evaluate a policy against claims (--claims) or an event log's claims (--eventlog): exit 0 permit, 1 deny."""
    from attestd.policy import builtin as builtins_mod
    from attestd.policy.claims import claims_from_json

    if (policy_file is None) == (builtin is None):
        raise EvidenceError("policy.usage", "give exactly one of --policy FILE or --builtin NAME")
    if (claims_file is None) == (eventlog is None):
        raise EvidenceError("policy.usage", "give exactly one of --claims FILE or --eventlog FILE")
    policy = builtins_mod.load(builtin) if builtin else _compile(_text(policy_file))
    if eventlog is not None:
        from attestd.cli.claims import load_claim_set

        claim_set = load_claim_set(eventlog, ima, pcrs)
        flat = claim_set.flat(None if policy.reads_all_claims else policy.incoming_claim_types())
        if aik_validated:
            flat["aikValidated"] = True
        if claim_set.provenance == "self-replay":
            typer.echo("note: the event log was read on its own (no --pcrs): nothing proves it", err=True)
        decision = policy.evaluate(flat)
    else:
        try:
            doc = json.loads(read_input(claims_file, field="claims"))
        except ValueError as exc:
            raise EvidenceError("policy.claims_json", f"claims file is not JSON: {exc}", field="claims") from None
        decision = policy.evaluate(claims_from_json(doc))
    if as_json:
        typer.echo(json.dumps(decision.to_dict(trace=not no_trace), indent=2, default=str))
    else:
        typer.echo(f"decision: {'permit' if decision.permitted else 'deny'}")
        typer.echo(decision.explanation)
        if decision.issued_claims:
            typer.echo("issued claims:")
            for k, v in decision.issued_claims.items():
                typer.echo(f"  {k} = {json.dumps(v)}")
        if not no_trace:
            typer.echo("trace:")
            for t in decision.trace:
                mark = "+" if t.matched else "-"
                typer.echo(f"  {mark} {t.section} #{t.rule} line {t.line}: {t.source}")
                for c in t.conditions:
                    seen = ", ".join(
                        json.dumps(v, default=str)
                        if not isinstance(v, (dict, list))
                        else f"<json {len(json.dumps(v))} chars>"
                        for _, v in c.seen[:4]
                    )
                    typer.echo(
                        f"      {'ok ' if c.satisfied else 'no '} {c.source}  saw: {seen or 'nothing'}"
                    )
                if t.action:
                    typer.echo(f"      -> {t.action}")
    if not decision.permitted:
        raise typer.Exit(EXIT_NO)


@app.command("hash")
@guarded
def hash_cmd(file: Path = typer.Argument(..., help="Policy text file ('-': stdin).")) -> None:
    """Print the policy hash as Azure computes it: BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy)))))."""
    from attestd.policy import policy_hash

    typer.echo(policy_hash(_text(file)))


@app.command("sign")
@guarded
def sign_cmd(
    file: Path = typer.Argument(..., help="Policy text file ('-': stdin)."),
    key: Path = typer.Option(..., "--key", help="RSA private key (PEM or DER)."),
    cert: Path = typer.Option(..., "--cert", help="Signer certificate, PEM (chain: leaf first)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JWS here instead of stdout."),
) -> None:
    """Check the policy, then print it as a signed JWS (RS256, signer in x5c)."""
    from attestd.policy.signing import load_certificates, load_private_key, sign_policy

    text = _text(file)
    _compile(text)  # never sign a policy that does not compile
    token = sign_policy(
        text,
        load_private_key(read_input(key, field="key")),
        load_certificates(read_input(cert, field="cert")),
    )
    if out is not None:
        out.write_text(token + "\n")
    else:
        typer.echo(token)


@app.command("verify")
@guarded
def verify_cmd(
    file: Path = typer.Argument(..., help="Signed policy (JWS) file ('-': stdin)."),
    trusted: List[Path] = typer.Option(
        [], "--trusted", help="Trusted policy signer certificate (PEM); repeatable."
    ),
    allow_unsigned: bool = typer.Option(False, "--allow-unsigned", help="Accept an alg=none policy."),
) -> None:
    """Verify a signed policy against trusted signers, check it, and print its text."""
    from attestd.policy.signing import load_certificates, parse_signed_policy

    certs = [c for p in trusted for c in load_certificates(read_input(p, field="trusted"))]
    signed = parse_signed_policy(read_input(file, field="jws"), certs, allow_unsigned)
    policy = signed.compile()
    signer = signed.signer.subject.rfc4514_string() if signed.signer is not None else "unsigned"
    typer.echo(f"ok: {signed.algorithm}, signer {signer}, hash {policy.hash}", err=True)
    typer.echo(signed.text)


@builtin_app.command("list")
@guarded
def builtin_list() -> None:
    """List the built-in policies."""
    from attestd.policy import builtin as builtins_mod

    for name in builtins_mod.list():
        typer.echo(name)


@builtin_app.command("show")
@guarded
def builtin_show(name: str = typer.Argument(..., help="Built-in policy name.")) -> None:
    """Print a built-in policy's source."""
    from attestd.policy import builtin as builtins_mod

    typer.echo(builtins_mod.text(name), nl=False)
