"""Fixtures of the service tests: a real app (FastAPI TestClient, lifespan run) on a fresh SQLite."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient
from service_helpers import Clock, bearer, credentials

from attestd.service import create_app, load_settings


class Service:
    def __init__(self, client: TestClient, data_dir, clock: Clock, app) -> None:
        self.client = client
        self.data_dir = data_dir
        self.clock = clock
        self.app = app
        creds = credentials(data_dir)
        self.admin = bearer(creds["adminToken"])
        self.operator = bearer(creds["operatorToken"])
        self.creds = creds

    @property
    def state(self):
        return self.app.state.attestd

    def create_tenant(self, name: str, mode: str = "token", signers=()) -> dict[str, str]:
        r = self.client.post("/tenants", json={"name": name, "mode": mode, "signers": list(signers)},
                             headers=self.operator)
        assert r.status_code == 201, r.text
        return bearer(r.json()["adminToken"])


@pytest.fixture
def service(tmp_path):
    clock = Clock()
    data_dir = tmp_path / "data"
    settings = load_settings(env={}, data_dir=data_dir, public_url="http://testserver", log_json=True)
    app = create_app(settings, clock=clock, announce=lambda m: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, data_dir, clock, app)
