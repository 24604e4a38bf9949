"""A real, throwaway PostgreSQL server for the tests (``scripts/postgres.sh``), and `attestd serve`
processes on it. Imported by ``conftest.py`` and the test modules of this folder (a uniquely named
module; never ``from conftest import``)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from corpus_paths import ROOT

SCRIPT = ROOT / "scripts" / "postgres.sh"
#: ``scripts/postgres.sh`` exit status when no server binaries are installed
NO_BINARIES = 3
NO_BINARIES_REASON = ("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin "
                      "or on PATH: scripts/install-system-deps.sh installs them (apt-get install postgresql)")


class ServerUnavailable(Exception):
    """The server binaries are missing (the tests skip with :data:`NO_BINARIES_REASON`)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One cluster in a temporary directory; ``url`` is its database ``attestd``."""

    _names = itertools.count(1)

    def __init__(self) -> None:
        # not under pytest's 0700 tmp dirs: as root the server runs as an unprivileged user
        self.base = Path(tempfile.mkdtemp(prefix="attestd-pg-"))
        os.chmod(self.base, 0o755)
        self.data = self.base / "data"
        r = subprocess.run(["bash", str(SCRIPT), "start", str(self.data)], capture_output=True, text=True)
        if r.returncode == NO_BINARIES:
            shutil.rmtree(self.base, ignore_errors=True)
            raise ServerUnavailable(NO_BINARIES_REASON)
        if r.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            raise RuntimeError(f"scripts/postgres.sh start failed ({r.returncode}): {r.stderr}")
        self.url = r.stdout.strip()

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.data)], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, prefix: str = "t", *, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``, which must have no connections); its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        tpl = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.execute(f"CREATE DATABASE {name}{tpl}")
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def serve_command() -> list[str]:
    return [sys.executable, "-c", "from attestd.cli.main import main; main()", "serve"]


class Replica:
    """``attestd serve`` as a real process (logs in ``{data_dir}/server.log``)."""

    def __init__(self, data_dir: Path, database_url: str, master_key: str, *, public_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATTESTD_")}
        env.update(ATTESTD_MASTER_KEY=master_key, ATTESTD_LOG_LEVEL="WARNING")
        cmd = [*serve_command(), "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
               "--database-url", database_url]
        if public_url:
            cmd += ["--public-url", public_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self._log)

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica did not become ready:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode
