"""The agent sends its IMA list incrementally: only the entries after what the service verified."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from corpus_paths import FIXTURES
from fastapi.testclient import TestClient

from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM, swtpm_available

pytestmark = [pytest.mark.swtpm]
if not swtpm_available():
    pytest.skip("swtpm / tpm2-tools not installed", allow_module_level=True)
pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed")


def _extend_ima(swtpm, data: bytes, start: int, stop: int) -> None:
    from attestd.ima import parse

    for e in parse(data).entries[start:stop]:
        swtpm.extend(10, {"sha1": e.template_hash, "sha256": e.template_digest("sha256")})


def test_incremental_ima(tmp_path):
    from attestd.agent.client import Agent, AgentConfig, AgentError
    from attestd.agent.tpm import AgentTPM
    from attestd.service import create_app, load_settings
    from attestd.testing.imagen import generate

    data_dir = tmp_path / "data"
    app = create_app(load_settings(env={}, data_dir=data_dir, public_url="http://testserver"),
                     clock=lambda: datetime.now(UTC), announce=lambda m: None)
    log = FIXTURES / "qemu" / "sb" / "binary_bios_measurements"
    full = generate(30, seed=7)
    offsets = full.offsets
    ima_file = tmp_path / "ima.bin"
    with TestClient(app) as client, SwTPM() as swtpm:
        token = json.loads((data_dir / "initial-credentials.json").read_text())["adminToken"]
        replay_into_swtpm(swtpm, log.read_bytes())
        tpm = AgentTPM(swtpm.tcti)
        agent = Agent(AgentConfig(server="http://testserver", tenant="default", token=token,
                                  state_dir=tmp_path / "agent", eventlog=str(log), ima=str(ima_file)),
                      tpm, client=client)
        host = agent.enroll()
        sent: list[dict] = []
        real_post = agent._post

        def spy(path, body=None, auth=True):
            if body is not None and path.endswith("/attest"):
                sent.append({"first": body.get("imaFirstIndex", 0), "has_log": "imaLog" in body})
            return real_post(path, body, auth=auth)

        agent._post = spy
        # the first 20 entries: the whole list
        ima_file.write_bytes(full.binary[:offsets[20]])
        _extend_ima(swtpm, full.binary, 0, 20)
        answer = agent.attest()
        assert answer["state"] == "trusted" and answer["imaPosition"] == 20
        # 10 more: only those are sent
        ima_file.write_bytes(full.binary)
        _extend_ima(swtpm, full.binary, 20, 30)
        answer = agent.attest()
        assert answer["imaPosition"] == 30 and sent[-1] == {"first": 20, "has_log": True}
        # nothing new: no list at all
        assert agent.attest()["state"] == "trusted" and sent[-1] == {"first": 0, "has_log": False}
        # a reboot: the service holds no state for this boot -> the agent resends the whole list
        tpm.close()
        swtpm.restart()
        replay_into_swtpm(swtpm, log.read_bytes())
        _extend_ima(swtpm, full.binary, 0, 30)
        tpm = AgentTPM(swtpm.tcti)
        agent.tpm = tpm
        answer = agent.attest()
        assert answer["imaPosition"] == 30 and sent[-1] == {"first": 0, "has_log": True}  # the whole new list
        # an agent that lost track (or a service that lost its state) is told to resend, not quarantined
        agent._save(imaPosition=25)
        answer = agent.attest()
        assert answer["state"] == "trusted" and [s["first"] for s in sent[-2:]] == [25, 0]
        # a new entry that the TPM did not measure (the list says one file, PCR 10 another): quarantine
        measured, claimed = generate(31, seed=8), generate(31, seed=9)
        _extend_ima(swtpm, measured.binary, 30, 31)
        ima_file.write_bytes(full.binary + claimed.binary[claimed.offsets[30]:])
        with pytest.raises(AgentError) as info:
            agent.attest()
        assert info.value.code in ("ima.replay_mismatch", "ima.template_hash_mismatch")
        r = client.get(f"/tenants/default/hosts/{host}", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["state"] == "quarantined"
        tpm.close()
