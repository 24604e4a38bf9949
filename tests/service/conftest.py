"""Fixtures of the service tests: a real app (FastAPI TestClient, lifespan run) on a fresh SQLite."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient
from service_helpers import Clock, Service

from attestd.service import create_app, load_settings


@pytest.fixture
def service(tmp_path):
    clock = Clock()
    data_dir = tmp_path / "data"
    settings = load_settings(env={}, data_dir=data_dir, public_url="http://testserver", log_json=True)
    app = create_app(settings, clock=clock, announce=lambda m: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, data_dir, clock, app)
