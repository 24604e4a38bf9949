"""The agent's protocol with the service: enroll once, then attest on an interval.

Enrollment (``enroll``): the agent sends its EK public area (and the EK certificate from NV when
the TPM has one) and its AK public area; the service answers with a credential made for the AK's
Name under that EK; only this TPM can activate it (TPM2_ActivateCredential), and the recovered
secret, sent back, makes the AK trusted for this host. Attestation (``attest``): a fresh nonce
from ``/challenge``, a quote over the configured PCRs with the nonce as extraData, the firmware
event log and the IMA log, and an identity key certified by the AK over the same nonce; the
service answers with a token and the host's identity certificate.

The agent keeps only non-secret state in ``state_dir`` (host id, last certificate); its keys are
TPM objects at persistent handles. Failed attempts are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import base64
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from attestd.agent.tpm import AgentTPM
from attestd.errors import AttestdError

__all__ = ["DEFAULT_EVENTLOG", "DEFAULT_IMA", "Agent", "AgentConfig", "AgentError"]

DEFAULT_EVENTLOG = "/sys/kernel/security/tpm0/binary_bios_measurements"
DEFAULT_IMA = "/sys/kernel/security/ima/binary_runtime_measurements"
#: PCR 0-9 and 14 (firmware, boot loader, GRUB, kernel, MOK) and 10 (IMA)
DEFAULT_SELECTION = "sha256:0,1,2,3,4,5,6,7,8,9,10,14"


class AgentError(AttestdError):
    """The service refused a request (``code`` is the service's problem code)."""


@dataclass
class AgentConfig:
    server: str
    tenant: str
    token: str | None = None
    state_dir: Path = Path("/var/lib/attestd-agent")
    eventlog: str | None = DEFAULT_EVENTLOG
    ima: str | None = DEFAULT_IMA
    selection: str = DEFAULT_SELECTION
    ek_alg: str = "ecc"
    ak_alg: str = "ecc"
    name: str = ""
    interval_seconds: int = 300


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Agent:
    def __init__(self, config: AgentConfig, tpm: AgentTPM, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.tpm = tpm
        self.http = client or httpx.Client(base_url=config.server.rstrip("/"), timeout=30.0)
        self.state_dir = Path(config.state_dir)

    # -- state ---------------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.state_dir / "agent.json"

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}

    def _save(self, **values: Any) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        doc = {**self.state(), **values}
        self._state_file.write_text(json.dumps(doc, indent=2))

    def _post(self, path: str, body: dict | None = None, *, auth: bool = True) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.config.token}"} if auth and self.config.token else {}
        r = self.http.post(f"/tenants/{self.config.tenant}{path}", json=body, headers=headers)
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                problem = {"code": f"http.{r.status_code}", "detail": r.text[:200]}
            raise AgentError(problem.get("code", f"http.{r.status_code}"), problem.get("detail") or str(problem),
                             field=problem.get("field"), details={"status": r.status_code, "problem": problem})
        return r.json()

    # -- protocol ------------------------------------------------------------------------------
    def enroll(self) -> str:
        """Enroll this TPM and activate the credential; returns the host id."""
        ek = self.tpm.ek(self.config.ek_alg)
        ak = self.tpm.ak(self.config.ak_alg)
        body: dict[str, Any] = {"name": self.config.name, "ekPublic": _b64(ek.public), "akPublic": _b64(ak.public),
                                "intervalSeconds": self.config.interval_seconds}
        cert = self.tpm.ek_certificate(self.config.ek_alg)
        if cert:
            body["ekCertificate"] = _b64(cert)
        enrolled = self._post("/hosts:enroll", body)
        host = enrolled["hostId"]
        cred = enrolled["credential"]
        secret = self.tpm.activate_credential(ak, ek, base64.b64decode(cred["idObject"]),
                                              base64.b64decode(cred["encryptedSecret"]))
        self._post(f"/hosts/{host}:activate", {"secret": _b64(secret)})
        self._save(hostId=host, tenant=self.config.tenant, server=self.config.server)
        return host

    def _read(self, path: str | None) -> bytes | None:
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None

    def attest(self) -> dict[str, Any]:
        """One attestation; returns the service's answer (token, certificate, state)."""
        host = self.state().get("hostId")
        if not host:
            raise AgentError("agent.not_enrolled", "run 'attestd agent enroll' first")
        nonce = self._post("/challenge", auth=False)["nonce"]
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        ak = self.tpm.ak(self.config.ak_alg)
        quote, signature = self.tpm.quote(ak, raw, self.config.selection)
        pcrs = self.tpm.read_pcrs(self.config.selection)
        identity = self.tpm.identity_key("ecc")
        certify, certify_sig = self.tpm.certify(identity, ak, raw)
        body: dict[str, Any] = {
            "ak": _b64(ak.public), "quote": _b64(quote), "signature": _b64(signature), "nonce": nonce,
            "pcrs": {bank: {str(i): v.hex() for i, v in values.items()} for bank, values in pcrs.items()},
            "identity": {"public": _b64(identity.public), "certifyInfo": _b64(certify), "signature": _b64(certify_sig)},
        }
        log = self._read(self.config.eventlog)
        if log:
            body["eventLog"] = _b64(log)
        ima = self._read(self.config.ima)
        from attestd.tpm import parse_attest

        reset = parse_attest(quote).clock_info.reset_count
        state = self.state()
        # the service's IMA state is per boot: after a reboot (resetCount moved on) send the whole list
        position = int(state.get("imaPosition", 0)) if state.get("imaResetCount") == reset else 0
        if ima:
            tail = self._ima_tail(ima, position)
            if tail is None:
                body["imaLog"] = _b64(ima)
            elif tail:
                body["imaLog"], body["imaFirstIndex"] = _b64(tail), position
            # an empty tail: nothing new was measured, the service's IMA state stays where it is
        try:
            answer = self._post(f"/hosts/{host}/attest", body, auth=False)
        except AgentError as err:
            if err.code != "ima.state_reset":
                raise
            # a reboot or a service without our IMA state: send the whole list (with a fresh nonce)
            self._save(imaPosition=0)
            return self.attest()
        if answer.get("certificate"):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "identity.pem").write_text(answer["certificate"])
            (self.state_dir / "ca.pem").write_text(answer.get("caCertificate", ""))
        self._save(lastAttestation=answer.get("state"), imaResetCount=reset,
                   imaPosition=answer.get("imaPosition", position if "imaLog" not in body and ima else 0))
        return answer

    @staticmethod
    def _ima_tail(data: bytes, position: int) -> bytes | None:
        """The binary measurement list from entry ``position`` on (what the service has not
        verified yet), or None to send the whole list."""
        if position <= 0:
            return None
        from attestd.ima import parse as parse_ima

        log = parse_ima(data)
        if log.format != "binary" or position > len(log):
            return None
        return data[log.entries[position].offset:] if position < len(log) else b""

    def unseal(self, sealed: dict[str, Any]) -> bytes:
        """Open one of the ``sealedSecrets`` an attestation returned, inside the TPM (PolicyPCR)."""
        ek = self.tpm.ek(self.config.ek_alg)
        selection = "+".join(f"{bank}:{','.join(map(str, pcrs))}" for bank, pcrs in sealed["pcrSelection"].items())
        return self.tpm.unseal(ek, base64.b64decode(sealed["public"]), base64.b64decode(sealed["duplicate"]),
                               base64.b64decode(sealed["encryptedSeed"]), selection)

    def run(self, *, interval: float | None = None, stop: Callable[[], bool] = lambda: False,
            sleep: Callable[[float], None] = time.sleep) -> None:
        """Attest every ``interval`` seconds; on failure retry with backoff (2^n s, max the interval)
        and +-25% jitter."""
        period = interval if interval is not None else self.config.interval_seconds
        failures = 0
        while not stop():
            try:
                self.attest()
                failures = 0
                delay = period
            except (AgentError, httpx.HTTPError, AttestdError):
                failures += 1
                delay = min(2 ** failures, period)
            sleep(delay * random.uniform(0.75, 1.25))
