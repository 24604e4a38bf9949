"""Collateral fetcher against a real HTTP server on 127.0.0.1 (started here) serving corpus collateral.

The server answers like AMD KDS and Intel PCS v4 (URL-encoded PEM issuer chains in the response
headers) and can be told to fail, rate-limit or hang, to exercise retries, backoff and stale serving.
Nothing here contacts the internet.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from teecli_times import AT_AZ_SNP, AT_GSG, AT_GTG

from attestd.errors import VerificationError
from attestd.tee.azure_hcl import parse_hcl_report
from attestd.tee.dcap.tcbinfo import TcbStatus
from attestd.tee.evidence import verify_tee_evidence
from attestd.tee.fetch import CollateralCache, CollateralFetcher, FetchConfig, FetchError
from attestd.tee.snp import parse_report
from attestd.tee.tdx import verify_tdx_quote

pytestmark = pytest.mark.corpus


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.plan: dict[str, list] = defaultdict(list)  # per-path scripted answers before the route
        self.hits: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Upstream

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits.append(self.path)
            step = self.server.plan[self.path].pop(0) if self.server.plan[self.path] else None
        if isinstance(step, tuple) and step[0] == "hang":
            time.sleep(step[1])
            step = None
        if isinstance(step, tuple):
            status, headers = step
            self._send(status, headers, b"upstream trouble")
            return
        route = self.server.routes.get(self.path)
        if route is None:
            self._send(404, {}, b"not found")
            return
        self._send(*route)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def upstream(corpus: Path):
    srv = Upstream()
    g = corpus / "go-tdx-guest"
    chain = quote((g / "tcbinfo_issuer_chain.pem").read_text())
    # Intel PCS v4 (TDX, FMSPC 50806f000000, Platform CA)
    srv.routes["/tdx/certification/v4/tcb?fmspc=50806f000000"] = (
        200, {"TCB-Info-Issuer-Chain": chain, "Content-Type": "application/json"},
        (g / "sample_tcbInfo_response").read_bytes())
    srv.routes["/tdx/certification/v4/qe/identity"] = (
        200, {"SGX-Enclave-Identity-Issuer-Chain": quote((g / "qeidentity_issuer_chain.pem").read_text())},
        (g / "sample_qeIdentity_response").read_bytes())
    srv.routes["/sgx/certification/v4/pckcrl?ca=platform&encoding=der"] = (
        200, {"SGX-PCK-CRL-Issuer-Chain": quote((g / "pckcrl_issuer_chain.pem").read_text())},
        (g / "pckcrl").read_bytes())
    srv.routes["/IntelSGXRootCA.der"] = (200, {}, (g / "rootcrl.der").read_bytes())
    # AMD KDS: the Milan VCEK of the az-snp-vtpm v1 VM and of go-sev-guest, and the Milan chain
    v1 = json.loads((corpus / "trustee" / "az-snp-vtpm" / "evidence-v1.json").read_text())
    hcl = base64.urlsafe_b64decode(v1["hcl_report"] + "=" * (-len(v1["hcl_report"]) % 4))
    rep = parse_report(parse_hcl_report(hcl).hw_report)
    t = rep.reported_tcb
    srv.routes[f"/vcek/v1/Milan/{rep.chip_id.hex()}?blSPL={t.boot_loader}&teeSPL={t.tee}&snpSPL={t.snp}"
               f"&ucodeSPL={t.microcode}"] = (200, {}, base64.urlsafe_b64decode(v1["vcek"]))
    gsg = parse_report((corpus / "go-sev-guest" / "attestation.bin").read_bytes())
    srv.routes[f"/vcek/v1/Milan/{gsg.chip_id.hex()}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"] = (
        200, {}, (corpus / "go-sev-guest" / "vcek.testcer.der").read_bytes())
    srv.routes["/vcek/v1/Milan/cert_chain"] = (200, {}, (corpus / "go-sev-guest" / "ask_ark_milan_vcek.pem").read_bytes())
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def make(upstream: Upstream, tmp_path: Path | None = None, clock: Clock | None = None, **cfg) -> CollateralFetcher:
    slept: list[float] = []
    config = FetchConfig(amd_kds_url=upstream.url, intel_pcs_url=upstream.url,
                         intel_root_ca_crl_url=upstream.url + "/IntelSGXRootCA.der",
                         cache_dir=tmp_path, **{"timeout": 2.0, **cfg})
    f = CollateralFetcher(config, clock=clock or Clock(datetime(2023, 7, 1, tzinfo=UTC)), sleep=slept.append)
    f.slept = slept  # type: ignore[attr-defined]
    return f


# -- Intel ---------------------------------------------------------------------------------------


def test_intel_collateral_end_to_end(upstream, corpus, anchors):
    quote4 = (corpus / "trustee" / "tdx" / "tdx_quote_4.dat").read_bytes()
    spr = (corpus / "go-tdx-guest" / "tdx_prod_quote_SPR_E4.dat").read_bytes()
    with make(upstream) as f:
        got = f.collateral_for_quote(quote4)
        assert (got.tee, got.fmspc, got.ca) == ("TDX", "50806f000000", "platform") and not got.stale
        assert [i.source for i in got.items] == ["network"] * 4
        v = verify_tdx_quote(quote4, got.collateral, trusted_root=anchors.intel_root, at=AT_GTG)
        assert v.tcb.status == TcbStatus.UP_TO_DATE
        # UPSTREAM (go-tdx-guest): with this collateral SPR_E4 has no matching TCB level
        with pytest.raises(VerificationError) as e:
            verify_tee_evidence("tdx", spr, anchors=anchors, at=AT_GTG, fetcher=f)
        assert e.value.code == "dcap.tcb_no_match"
        r = verify_tee_evidence("tdx", quote4, anchors=anchors, at=AT_GTG, fetcher=f)
        assert r.tcb_status == "UpToDate" and len(r.notes) == 4 and all("fetched" in n for n in r.notes)
    assert "/tdx/certification/v4/tcb?fmspc=50806f000000" in upstream.hits


def test_issuer_chain_header_is_required(upstream):
    path = "/tdx/certification/v4/qe/identity"
    status, _headers, body = upstream.routes[path]
    upstream.routes[path] = (status, {}, body)
    with make(upstream) as f, pytest.raises(FetchError) as e:
        f.qe_identity("TDX")
    assert e.value.code == "fetch.upstream_unavailable" and "SGX-Enclave-Identity-Issuer-Chain" in e.value.message


def test_bad_body_is_an_upstream_failure(upstream):
    path = "/IntelSGXRootCA.der"
    upstream.routes[path] = (200, {}, b"not a CRL")
    with make(upstream) as f, pytest.raises(FetchError) as e:
        f.root_ca_crl()
    assert e.value.code == "fetch.upstream_unavailable" and "unusable" in e.value.message


# -- AMD -----------------------------------------------------------------------------------------


def test_vcek_for_report_and_front(upstream, corpus, anchors, az_snp):
    v1 = json.loads((az_snp / "evidence-v1.json").read_text())
    hcl = base64.urlsafe_b64decode(v1["hcl_report"] + "=" * (-len(v1["hcl_report"]) % 4))
    report = parse_hcl_report(hcl).hw_report  # a v3 report: the product comes from its CPUID
    with make(upstream) as f:
        e = f.vcek_for_report(report)
        assert e.vcek == base64.urlsafe_b64decode(v1["vcek"]) and b"BEGIN CERTIFICATE" in e.chain
        r = verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_AZ_SNP, fetcher=f)
        assert r.claims["x-ms-sevsnpvm-reportdata"].startswith(parse_hcl_report(hcl).variable_data_digest().hex())
        # azure-cvm evidence without its VCEK: fetched from KDS
        no_vcek = {k: v for k, v in v1.items() if k != "vcek"}
        r = verify_tee_evidence("azure-cvm", json.dumps(no_vcek), anchors=anchors, at=AT_AZ_SNP, fetcher=f,
                                nonce=b"challenge")
        assert any("/vcek/v1/Milan/" in n for n in r.notes)
        # a v2 report has no CPUID: the product line must be given
        gsg = (corpus / "go-sev-guest" / "attestation.bin").read_bytes()
        with pytest.raises(Exception) as err:
            f.vcek_for_report(gsg)
        assert getattr(err.value, "code", None) == "fetch.product_unknown"
        assert f.vcek_for_report(gsg, product="Milan").vcek == (corpus / "go-sev-guest" / "vcek.testcer.der").read_bytes()


def test_unknown_tcb_is_not_found(upstream, corpus):
    rep = parse_report((corpus / "go-sev-guest" / "attestation.bin").read_bytes())
    wrong = type(rep.reported_tcb)(raw=0, boot_loader=3, tee=0, snp=5, microcode=68, fmc=None, reserved=bytes(4))
    with make(upstream) as f, pytest.raises(FetchError) as e:
        f.vcek("Milan", rep.chip_id, wrong)
    assert e.value.code == "fetch.not_found" and e.value.http_status == 503
    assert len(f.slept) == 0  # a 404 is an answer, not a failure to retry


# -- retries, backoff, timeouts ------------------------------------------------------------------


def test_retries_with_bounded_jittered_backoff(upstream):
    path = "/vcek/v1/Milan/cert_chain"
    upstream.plan[path] = [(503, {}), (502, {}), (500, {})]
    with make(upstream, attempts=5, backoff_base=0.5, backoff_cap=1.5) as f:
        got = f.amd_cert_chain("Milan")
    assert got.source == "network" and got.attempts == 4
    assert len(f.slept) == 3 and f.slept == f.delays
    for i, d in enumerate(f.slept):
        assert 0 <= d <= min(1.5, 0.5 * 2**i)
    assert upstream.hits.count(path) == 4


def test_retry_after_is_honoured_and_capped(upstream):
    path = "/vcek/v1/Milan/cert_chain"
    upstream.plan[path] = [(429, {"Retry-After": "3"}), (503, {"Retry-After": "120"})]
    with make(upstream, attempts=3, backoff_base=0.01, retry_after_cap=10.0) as f:
        assert f.amd_cert_chain("Milan").attempts == 3
    assert f.slept[0] == 3.0 and f.slept[1] == 10.0


def test_gives_up_after_attempts(upstream):
    path = "/vcek/v1/Milan/cert_chain"
    upstream.plan[path] = [(503, {})] * 10
    with make(upstream, attempts=3) as f, pytest.raises(FetchError) as e:
        f.amd_cert_chain("Milan")
    assert e.value.code == "fetch.upstream_unavailable" and e.value.details["attempts"] == 3
    assert len(f.slept) == 2 and upstream.hits.count(path) == 3


def test_timeout(upstream):
    path = "/vcek/v1/Milan/cert_chain"
    upstream.plan[path] = [("hang", 1.0), ("hang", 1.0)]
    t0 = time.monotonic()
    with make(upstream, attempts=2, timeout=0.2) as f, pytest.raises(FetchError) as e:
        f.amd_cert_chain("Milan")
    assert "timed out" in e.value.message and time.monotonic() - t0 < 1.9


def test_rejected_status(upstream):
    upstream.plan["/vcek/v1/Milan/cert_chain"] = [(403, {})]
    with make(upstream) as f, pytest.raises(FetchError) as e:
        f.amd_cert_chain("Milan")
    assert e.value.code == "fetch.rejected" and f.slept == []


# -- cache and stale-while-revalidate ------------------------------------------------------------


def test_fresh_cache_skips_the_network(upstream, tmp_path):
    clock = Clock(datetime(2023, 7, 1, tzinfo=UTC))
    with make(upstream, tmp_path, clock, fresh_for=timedelta(hours=1)) as f:
        a = f.qe_identity("TDX")
        clock.now += timedelta(minutes=30)
        b = f.qe_identity("TDX")
    assert (a.source, b.source) == ("network", "cache") and a.body == b.body
    assert b.header("SGX-Enclave-Identity-Issuer-Chain", "x").startswith("-----BEGIN CERTIFICATE-----")
    assert upstream.hits.count("/tdx/certification/v4/qe/identity") == 1
    # a new fetcher on the same directory reads the same cache
    with make(upstream, tmp_path, clock, fresh_for=timedelta(hours=1)) as g:
        assert g.qe_identity("TDX").source == "cache"


def test_stale_served_when_upstream_fails(upstream, tmp_path, corpus, anchors):
    clock = Clock(datetime(2023, 7, 1, tzinfo=UTC))
    quote4 = (corpus / "trustee" / "tdx" / "tdx_quote_4.dat").read_bytes()
    cfg = {"fresh_for": timedelta(hours=1), "max_staleness": timedelta(hours=6), "attempts": 2}
    with make(upstream, tmp_path, clock, **cfg) as f:
        first = f.collateral_for_quote(quote4)
        assert not first.stale
        clock.now += timedelta(hours=2)  # past fresh_for: revalidate; the upstream is down
        for path in list(upstream.routes):
            upstream.plan[path] = [(503, {})] * 4
        second = f.collateral_for_quote(quote4)
        assert second.stale and all(i.source == "stale" for i in second.items)
        assert all("HTTP 503" in (i.error or "") for i in second.items)
        # the stale collateral is the same and still verifies; the front says where it came from
        v = verify_tdx_quote(quote4, second.collateral, trusted_root=anchors.intel_root, at=AT_GTG)
        assert v.tcb.status == TcbStatus.UP_TO_DATE
        for path in list(upstream.routes):
            upstream.plan[path] = [(503, {})] * 4
        r = verify_tee_evidence("tdx", quote4, anchors=anchors, at=AT_GTG, fetcher=f)
        assert any("stale" in n and "upstream failed" in n for n in r.notes)
        # beyond max_staleness the failure is raised
        clock.now += timedelta(hours=5)
        for path in list(upstream.routes):
            upstream.plan[path] = [(503, {})] * 4
        with pytest.raises(FetchError) as e:
            f.collateral_for_quote(quote4)
        assert e.value.code == "fetch.stale_too_old"
        # once the upstream is back, fresh collateral replaces the cache
        for path in list(upstream.routes):
            upstream.plan[path] = []
        assert not f.collateral_for_quote(quote4).stale


def test_not_found_is_never_served_stale(upstream, tmp_path):
    clock = Clock(datetime(2023, 7, 1, tzinfo=UTC))
    with make(upstream, tmp_path, clock, immutable_fresh_for=timedelta(minutes=1)) as f:
        f.amd_cert_chain("Milan")
        clock.now += timedelta(minutes=5)
        upstream.plan["/vcek/v1/Milan/cert_chain"] = [(404, {})]
        with pytest.raises(FetchError) as e:
            f.amd_cert_chain("Milan")
    assert e.value.code == "fetch.not_found"


def test_corrupt_cache_entry_is_ignored(upstream, tmp_path):
    with make(upstream, tmp_path) as f:
        item = f.amd_cert_chain("Milan")
    cache = CollateralCache(tmp_path)
    body = next(tmp_path.glob("*.body"))
    body.write_bytes(b"tampered")
    assert cache.get(item.url) is None
    with make(upstream, tmp_path) as f:
        assert f.amd_cert_chain("Milan").source == "network"


def test_cli_fetch(upstream, tmp_path, corpus, az_snp):
    from typer.testing import CliRunner

    from attestd.cli.tee import app

    v1 = json.loads((az_snp / "evidence-v1.json").read_text())
    hcl = base64.urlsafe_b64decode(v1["hcl_report"] + "=" * (-len(v1["hcl_report"]) % 4))
    report = tmp_path / "report.bin"
    report.write_bytes(parse_hcl_report(hcl).hw_report)
    res = CliRunner().invoke(app, [
        "verify", "--type", "sevsnp", str(report), "--ark", str(corpus / "go-sev-guest" / "ask_ark_milan_vcek.pem"),
        "--at", "2025-06-01T00:00:00Z", "--fetch", "--kds-url", upstream.url, "--cache-dir", str(tmp_path / "c"),
        "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["verified"] and doc["claims"]["x-ms-sevsnpvm-vmpl"] == 0
    assert any("network" in n for n in doc["notes"])
    assert list((tmp_path / "c").glob("*.body"))


def test_config_validation():
    with pytest.raises(ValueError):
        FetchConfig(attempts=0)
    with pytest.raises(ValueError):
        FetchConfig(timeout=0)
    assert AT_GSG < AT_GTG
