"""A host that misses its attestation interval becomes stale; attesting again makes it trusted."""

from __future__ import annotations

import pytest
from corpus_paths import FIXTURES
from fastapi.testclient import TestClient

from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM, swtpm_available

pytestmark = [pytest.mark.swtpm]
if not swtpm_available():
    pytest.skip("swtpm / tpm2-tools not installed", allow_module_level=True)
pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed")


def test_stale_and_back(tmp_path):
    import json
    from datetime import UTC, datetime, timedelta

    class Clock:
        now = datetime.now(UTC).replace(microsecond=0)

        def __call__(self):
            return self.now

        def advance(self, **kw):
            self.now += timedelta(**kw)

    def bearer(token):
        return {"Authorization": f"Bearer {token}"}

    from attestd.agent.client import Agent, AgentConfig
    from attestd.agent.tpm import AgentTPM
    from attestd.service import create_app, load_settings

    clock = Clock()
    data = tmp_path / "data"
    app = create_app(load_settings(env={}, data_dir=data, public_url="http://testserver", stale_margin=1.5),
                     clock=clock, announce=lambda m: None)
    log = FIXTURES / "qemu" / "sb" / "binary_bios_measurements"
    with TestClient(app) as client, SwTPM() as swtpm:
        token = json.loads((data / "initial-credentials.json").read_text())["adminToken"]
        replay_into_swtpm(swtpm, log.read_bytes())
        tpm = AgentTPM(swtpm.tcti)
        agent = Agent(AgentConfig(server="http://testserver", tenant="default", token=token,
                                  state_dir=tmp_path / "agent", eventlog=str(log), ima=None, interval_seconds=60),
                      tpm, client=client)
        host = agent.enroll()
        assert agent.attest()["state"] == "trusted"
        fleet = app.state.fleet
        clock.advance(seconds=80)  # 80 s < 1.5 x 60 s
        assert fleet.mark_stale() == []
        clock.advance(seconds=20)
        assert fleet.mark_stale() == [host]
        doc = client.get(f"/tenants/default/hosts/{host}", headers=bearer(token)).json()
        assert doc["state"] == "stale" and doc["stale"] is True
        assert doc["history"][-1]["reason"] == "missed attestation"
        assert agent.attest()["state"] == "trusted"
        doc = client.get(f"/tenants/default/hosts/{host}", headers=bearer(token)).json()
        assert [h["to"] for h in doc["history"]] == ["enrolling", "trusted", "stale", "trusted"]
        tpm.close()
