"""``attestd agent``, ``attestd hosts`` and ``attestd incidents``: the host agent and the fleet's
operator commands (over the service's HTTP API)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from attestd.cli.common import EXIT_NO, guarded
from attestd.errors import AttestdError, EvidenceError

agent_app = typer.Typer(help="The host agent: enroll this machine's TPM, then attest.", no_args_is_help=True)
hosts_app = typer.Typer(help="Enrolled hosts: list, show, remediate, retire.", no_args_is_help=True)
incidents_app = typer.Typer(help="Why hosts were quarantined.", no_args_is_help=True)

_SERVER = typer.Option(os.environ.get("ATTESTD_SERVER", "http://127.0.0.1:8080"), "--server",
                       help="Service URL (env ATTESTD_SERVER).")
_TENANT = typer.Option("default", "--tenant", "-t", help="Tenant.")
_TOKEN = typer.Option(None, "--token", envvar="ATTESTD_TOKEN", help="Tenant admin token (env ATTESTD_TOKEN).")
_JSON = typer.Option(False, "--json", help="Print JSON.")


def _interval(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise EvidenceError("agent.interval", f"--interval is like 30s, 5m or 1h, not {text!r}", field="interval")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _agent(server: str, tenant: str, token: str | None, tcti: str, state_dir: Path, eventlog: str, ima: str,
           name: str, interval: float = 300):
    from attestd.agent.client import Agent, AgentConfig
    from attestd.agent.tpm import AgentTPM

    config = AgentConfig(server=server, tenant=tenant, token=token, state_dir=state_dir, eventlog=eventlog or None,
                         ima=ima or None, name=name, interval_seconds=int(interval))
    return Agent(config, AgentTPM(tcti))


_TCTI = typer.Option("device:/dev/tpmrm0", "--tcti", help="TPM TCTI (swtpm:host=127.0.0.1,port=2321 for swtpm).")
_STATE = typer.Option(Path("/var/lib/attestd-agent"), "--state-dir", help="Where the agent keeps its host id.")
_EVENTLOG = typer.Option("/sys/kernel/security/tpm0/binary_bios_measurements", "--eventlog")
_IMA = typer.Option("/sys/kernel/security/ima/binary_runtime_measurements", "--ima")


@agent_app.command("enroll")
@guarded
def agent_enroll(server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN, tcti: str = _TCTI,
                 state_dir: Path = _STATE, name: str = typer.Option(os.uname().nodename, "--name"),
                 interval: str = typer.Option("5m", "--interval", help="How often this host will attest.")) -> None:
    """Enroll this TPM (EK, AK, credential activation)."""
    agent = _agent(server, tenant, token, tcti, state_dir, "", "", name, _interval(interval))
    try:
        host = agent.enroll()
    finally:
        agent.tpm.close()
    typer.echo(f"enrolled: host {host} (state saved in {state_dir})")


@agent_app.command("attest")
@guarded
def agent_attest(server: str = _SERVER, tenant: str = _TENANT, tcti: str = _TCTI, state_dir: Path = _STATE,
                 eventlog: str = _EVENTLOG, ima: str = _IMA,
                 once: bool = typer.Option(False, "--once", help="Attest once and exit (1 when refused)."),
                 interval: str = typer.Option("5m", "--interval", help="Attest this often (with backoff on failure).")
                 ) -> None:
    """Attest now (--once) or on an interval; the identity certificate lands in the state dir."""
    from attestd.agent.client import AgentError

    agent = _agent(server, tenant, None, tcti, state_dir, eventlog, ima, "", _interval(interval))
    try:
        if once:
            try:
                answer = agent.attest()
            except AgentError as err:
                typer.echo(f"refused: {err}", err=True)
                raise typer.Exit(EXIT_NO) from None
            typer.echo(f"attested: host {answer.get('hostId')} is {answer.get('state')}"
                       + (f"; certificate in {state_dir / 'identity.pem'}" if answer.get("certificate") else ""))
            return
        agent.run(interval=_interval(interval))
    finally:
        agent.tpm.close()


def _api(server: str, token: str | None):
    import httpx

    if not token:
        raise EvidenceError("cli.token", "give --token or set ATTESTD_TOKEN (the tenant admin token)", field="token")
    return httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _call(server: str, token: str | None, method: str, path: str) -> Any:
    with _api(server, token) as c:
        r = c.request(method, path)
    if r.status_code >= 400:
        try:
            p = r.json()
        except ValueError:
            p = {"code": f"http.{r.status_code}", "detail": r.text[:200]}
        raise AttestdError(p.get("code", "http.error"), p.get("detail", ""), field=p.get("field"))
    return r.json()


def _hosts_table(hosts: list[dict]) -> Table:
    t = Table("host", "name", "state", "stale", "last attested", "certificate")
    for h in hosts:
        t.add_row(h["hostId"], h["name"], h["state"], "yes" if h["stale"] else "", h["lastAttestedAt"] or "-",
                  h["certificateSerial"] or "-")
    return t


@hosts_app.command("list")
@guarded
def hosts_list(server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN,
               state: str | None = typer.Option(None, "--state"), as_json: bool = _JSON) -> None:
    doc = _call(server, token, "GET", f"/tenants/{tenant}/hosts" + (f"?state={state}" if state else ""))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        Console().print(_hosts_table(doc["hosts"]))


@hosts_app.command("show")
@guarded
def hosts_show(host: str, server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN,
               as_json: bool = _JSON) -> None:
    doc = _call(server, token, "GET", f"/tenants/{tenant}/hosts/{host}")
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    console = Console()
    console.print(_hosts_table([doc]))
    hist = Table("at", "from", "to", "reason", "by")
    for e in doc["history"]:
        hist.add_row(e["at"], e["from"] or "-", e["to"], e["reason"], e["actor"])
    console.print(hist)
    for inc in doc["incidents"]:
        console.print(f"[bold]incident {inc['incidentId']}[/bold] {inc['code']} "
                      f"({'closed' if inc['closedAt'] else 'open'})\n{inc['summary']}")


@hosts_app.command("remediate")
@guarded
def hosts_remediate(host: str, server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN) -> None:
    """Mark a quarantined host as remediated: its next clean attestation brings it back."""
    doc = _call(server, token, "POST", f"/tenants/{tenant}/hosts/{host}:remediate")
    typer.echo(f"{host} is {doc['state']}")


@hosts_app.command("retire")
@guarded
def hosts_retire(host: str, server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN) -> None:
    doc = _call(server, token, "POST", f"/tenants/{tenant}/hosts/{host}:retire")
    typer.echo(f"{host} is {doc['state']}")


@incidents_app.command("list")
@guarded
def incidents_list(server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN,
                   open_only: bool = typer.Option(False, "--open"), as_json: bool = _JSON) -> None:
    doc = _call(server, token, "GET", f"/tenants/{tenant}/incidents" + ("?open=true" if open_only else ""))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    t = Table("incident", "host", "opened", "code", "closed", "summary")
    for i in doc["incidents"]:
        t.add_row(i["incidentId"], i["hostId"], i["openedAt"], i["code"], i["closedAt"] or "-",
                  i["summary"].splitlines()[0][:80])
    Console().print(t)


@incidents_app.command("show")
@guarded
def incidents_show(incident: str, server: str = _SERVER, tenant: str = _TENANT, token: str | None = _TOKEN,
                   as_json: bool = _JSON) -> None:
    doc = _call(server, token, "GET", f"/tenants/{tenant}/incidents/{incident}")
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"incident {doc['incidentId']} on host {doc['hostId']}: {doc['code']}")
    typer.echo(f"opened {doc['openedAt']}" + (f", closed {doc['closedAt']}" if doc["closedAt"] else " (open)"))
    typer.echo(f"last good attestation: {doc['lastGoodAttestationId'] or '-'}")
    typer.echo(doc["summary"])
