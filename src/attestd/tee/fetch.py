"""Optional collateral fetcher: AMD KDS (VCEKs, ASK/ARK chains) and Intel PCS v4 (TCB Info, QE Identity,
PCK CRLs, Root CA CRL), with an on-disk cache, bounded retries and stale-while-revalidate.

Nothing else in Attestd touches the network; verifiers take collateral as input. This module is the
one place that downloads it, for deployments that want that.

Endpoints (base URLs are configuration, :class:`FetchConfig`):

* AMD KDS ("VCEK Certificate and KDS Interface Specification", AMD 57230):
  ``GET {kds}/vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=`` (DER VCEK; Turin uses the
  first 8 bytes of the chip id and adds ``fmcSPL``) and ``GET {kds}/vcek/v1/{product}/cert_chain``
  (PEM: ASK, then ARK).
* Intel PCS v4 ("Intel SGX and Intel TDX Provisioning Certification Service API"):
  ``GET {pcs}/sgx|tdx/certification/v4/tcb?fmspc=`` (header ``TCB-Info-Issuer-Chain``),
  ``GET {pcs}/sgx|tdx/certification/v4/qe/identity`` (``SGX-Enclave-Identity-Issuer-Chain``),
  ``GET {pcs}/sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der``
  (``SGX-PCK-CRL-Issuer-Chain``); the issuer-chain headers are URL-encoded PEM. The Root CA CRL is
  fetched from ``intel_root_ca_crl_url`` (Intel publishes it as a DER file).

Behaviour of :meth:`CollateralFetcher.get`:

1. a cached response younger than ``fresh_for`` is served without a request (``source="cache"``);
2. otherwise the URL is requested, up to ``attempts`` times. Timeouts, transport errors, 408, 429
   and 5xx are retried after a full-jitter exponential backoff, ``uniform(0, min(cap, base * 2**n))``,
   raised to a ``Retry-After`` the server sent, never above ``retry_after_cap``. A response
   lacking its issuer-chain header or failing content validation counts as an upstream failure;
3. a good response is cached (atomically) and served (``source="network"``);
4. when the upstream failed and a cached response no older than ``max_staleness`` exists, it is
   served with ``source="stale"`` and ``error`` saying why (stale-while-revalidate); otherwise the
   failure is raised. 404 and other 4xx answers are definitive (``fetch.not_found`` /
   ``fetch.rejected``) and never served from a stale cache.

Failures are :class:`FetchError` (``fetch.*``). The clock, the sleep function and the random source
are injectable, so tests run without waiting and without the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import quote as urlquote
from urllib.parse import unquote

import httpx
from cryptography import x509

from attestd.errors import AttestdError, EvidenceError
from attestd.tee.dcap.collateral import Collateral
from attestd.tee.dcap.pck import parse_pck_chain
from attestd.tee.dcap.quote import CertDataType, Quote, TeeType, parse_quote
from attestd.tee.snp.report import AttestationReport, ProductLine, TcbVersion, parse_report

__all__ = [
    "DEFAULT_AMD_KDS",
    "DEFAULT_INTEL_PCS",
    "DEFAULT_INTEL_ROOT_CA_CRL",
    "CollateralCache",
    "CollateralFetcher",
    "FetchConfig",
    "FetchError",
    "Fetched",
    "FetchedCollateral",
    "SnpEndorsements",
]

DEFAULT_AMD_KDS = "https://kdsintf.amd.com"
DEFAULT_INTEL_PCS = "https://api.trustedservices.intel.com"
DEFAULT_INTEL_ROOT_CA_CRL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

TCB_INFO_CHAIN = "TCB-Info-Issuer-Chain"
TCB_INFO_CHAIN_V3 = "SGX-TCB-Info-Issuer-Chain"
QE_IDENTITY_CHAIN = "SGX-Enclave-Identity-Issuer-Chain"
PCK_CRL_CHAIN = "SGX-PCK-CRL-Issuer-Chain"


class FetchError(AttestdError):
    """Collateral could not be obtained (and no usable cached copy existed)."""

    http_status = 503
    title = "Collateral unavailable"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Where and how to fetch. Durations are :class:`~datetime.timedelta`; ``timeout`` is seconds."""

    amd_kds_url: str = DEFAULT_AMD_KDS
    intel_pcs_url: str = DEFAULT_INTEL_PCS
    intel_root_ca_crl_url: str = DEFAULT_INTEL_ROOT_CA_CRL
    cache_dir: Path | None = None
    timeout: float = 10.0
    attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    retry_after_cap: float = 30.0
    #: Intel TCB Info, QE Identity and CRLs change; re-validate after this long.
    fresh_for: timedelta = timedelta(hours=1)
    #: VCEKs and AMD cert chains for a given URL do not change.
    immutable_fresh_for: timedelta = timedelta(days=30)
    #: Serve a cached response this old at most when the upstream fails.
    max_staleness: timedelta = timedelta(days=1)
    user_agent: str = "attestd-collateral-fetcher"

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.timeout <= 0 or self.backoff_base < 0 or self.backoff_cap < 0 or self.retry_after_cap < 0:
            raise ValueError("timeout must be positive and backoff values non-negative")


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response. ``source``: ``network``, ``cache`` (fresh) or ``stale`` (upstream failed:
    ``error`` says how). ``headers`` keeps the issuer-chain headers, URL-decoded."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    fetched_at: datetime
    source: str
    error: str | None = None
    attempts: int = 0

    @property
    def stale(self) -> bool:
        return self.source == "stale"

    def header(self, *names: str) -> str | None:
        for name in names:
            value = self.headers.get(name.lower())
            if value is not None:
                return value
        return None

    def describe(self) -> str:
        text = f"{self.url}: {self.source}, fetched {self.fetched_at.isoformat()}"
        return text + (f" (upstream failed: {self.error})" if self.error else "")


class CollateralCache:
    """Responses on disk: ``<sha256(url)>.body`` plus ``.json`` metadata, written atomically."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / f"{key}.body", self.directory / f"{key}.json"

    def get(self, url: str) -> Fetched | None:
        body_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text())
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
            return None  # torn or tampered entry: ignore it
        try:
            fetched_at = datetime.fromisoformat(meta["fetched_at"])
        except (KeyError, TypeError, ValueError):
            return None
        headers = meta.get("headers") if isinstance(meta.get("headers"), dict) else {}
        return Fetched(url, body, MappingProxyType(dict(headers)), fetched_at, "cache")

    def put(self, item: Fetched) -> None:
        body_path, meta_path = self._paths(item.url)
        meta = {
            "url": item.url,
            "fetched_at": item.fetched_at.isoformat(),
            "sha256": hashlib.sha256(item.body).hexdigest(),
            "headers": dict(item.headers),
        }
        for path, data in ((body_path, item.body), (meta_path, json.dumps(meta, indent=1).encode())):
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


@dataclass(frozen=True, slots=True)
class SnpEndorsements:
    """A VCEK (DER) and its KDS chain (PEM: ASK, ARK) for one report, with the responses used."""

    vcek: bytes
    chain: bytes
    items: tuple[Fetched, ...]

    @property
    def stale(self) -> bool:
        return any(i.stale for i in self.items)


@dataclass(frozen=True, slots=True)
class FetchedCollateral:
    """Intel collateral for one quote, loaded (not verified), with the responses used."""

    collateral: Collateral
    tee: str
    fmspc: str
    ca: str
    items: tuple[Fetched, ...]

    @property
    def stale(self) -> bool:
        return any(i.stale for i in self.items)


_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass
class CollateralFetcher:
    """Fetches collateral per :class:`FetchConfig`; see the module docstring. Use as a context
    manager, or call :meth:`close`, to release the HTTP client."""

    config: FetchConfig = field(default_factory=FetchConfig)
    client: httpx.Client | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    #: every backoff delay slept, in order (for logs and tests)
    delays: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._own_client = self.client is None
        if self.client is None:
            self.client = httpx.Client(
                timeout=self.config.timeout,
                follow_redirects=True,
                headers={"User-Agent": self.config.user_agent},
            )
        self.cache = CollateralCache(self.config.cache_dir) if self.config.cache_dir is not None else None

    def close(self) -> None:
        if self._own_client and self.client is not None:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic GET with cache, retries and stale serving ------------------------------------

    def get(
        self,
        url: str,
        *,
        fresh_for: timedelta | None = None,
        required_headers: Sequence[Sequence[str]] = (),
        validate: Callable[[bytes], None] | None = None,
    ) -> Fetched:
        """GET ``url`` per the module docstring. ``required_headers``: groups of alternative header
        names, one of each group must be present. ``validate`` raises on unusable content."""
        now = self.clock()
        fresh_for = self.config.fresh_for if fresh_for is None else fresh_for
        cached = self.cache.get(url) if self.cache is not None else None
        if cached is not None and timedelta(0) <= now - cached.fetched_at <= fresh_for:
            return cached
        try:
            item = self._download(url, required_headers, validate)
        except FetchError as err:
            if err.code in ("fetch.not_found", "fetch.rejected"):
                raise
            if cached is not None and now - cached.fetched_at <= self.config.max_staleness:
                return Fetched(cached.url, cached.body, cached.headers, cached.fetched_at, "stale",
                               error=str(err), attempts=err.details.get("attempts", 0))
            if cached is not None:
                raise FetchError(
                    "fetch.stale_too_old",
                    f"{err.message}; the cached copy from {cached.fetched_at.isoformat()} is older than "
                    f"max_staleness {self.config.max_staleness}",
                    field=url,
                    details={**err.details, "cached_at": cached.fetched_at.isoformat()},
                ) from None
            raise
        if self.cache is not None:
            self.cache.put(item)
        return item

    def _download(
        self,
        url: str,
        required_headers: Sequence[Sequence[str]],
        validate: Callable[[bytes], None] | None,
    ) -> Fetched:
        assert self.client is not None
        cfg = self.config
        last = "no attempt made"
        for attempt in range(cfg.attempts):
            retry_after: float | None = None
            try:
                resp = self.client.get(url, timeout=cfg.timeout)
            except httpx.TimeoutException as exc:
                last = f"timed out after {cfg.timeout}s ({type(exc).__name__})"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                if status == 200:
                    headers: dict[str, str] = {}
                    missing = []
                    for group in required_headers:
                        found = next((n for n in group if resp.headers.get(n) is not None), None)
                        if found is None:
                            missing.append(" or ".join(group))
                        else:
                            headers[group[0].lower()] = unquote(resp.headers[found])
                    if missing:
                        last = f"response lacks header {', '.join(missing)}"
                        break  # a broken upstream does not heal by asking again at once
                    body = resp.content
                    if validate is not None:
                        try:
                            validate(body)
                        except (ValueError, AttestdError) as exc:
                            last = f"unusable response body: {exc}"
                            break
                    return Fetched(url, body, MappingProxyType(headers), self.clock(), "network",
                                   attempts=attempt + 1)
                if status == 404:
                    raise FetchError("fetch.not_found", f"{url} answered 404 Not Found", field=url,
                                     details={"status": status, "attempts": attempt + 1})
                if status not in _RETRY_STATUS:
                    raise FetchError("fetch.rejected", f"{url} answered HTTP {status}", field=url,
                                     details={"status": status, "attempts": attempt + 1})
                last = f"HTTP {status}"
                retry_after = _retry_after(resp.headers.get("Retry-After"), self.clock())
            if attempt + 1 < cfg.attempts:
                delay = self.rng.uniform(0, min(cfg.backoff_cap, cfg.backoff_base * (2**attempt)))
                if retry_after is not None:
                    delay = max(delay, retry_after)
                delay = min(delay, cfg.retry_after_cap)
                self.delays.append(delay)
                self.sleep(delay)
        else:
            attempt = cfg.attempts - 1
        raise FetchError("fetch.upstream_unavailable", f"{url}: {last}", field=url,
                         details={"attempts": attempt + 1, "last_error": last})

    # -- AMD KDS ------------------------------------------------------------------------------

    def vcek_url(self, product: ProductLine | str, chip_id: bytes, tcb: TcbVersion) -> str:
        product = ProductLine(product)
        hwid = chip_id[:8] if product is ProductLine.TURIN else chip_id
        query = f"blSPL={tcb.boot_loader}&teeSPL={tcb.tee}&snpSPL={tcb.snp}&ucodeSPL={tcb.microcode}"
        if product is ProductLine.TURIN:
            query = f"fmcSPL={tcb.fmc or 0}&" + query
        return f"{self.config.amd_kds_url.rstrip('/')}/vcek/v1/{product.value}/{hwid.hex()}?{query}"

    def vcek(self, product: ProductLine | str, chip_id: bytes, tcb: TcbVersion) -> Fetched:
        """The VCEK (DER) for this chip and TCB."""
        return self.get(self.vcek_url(product, chip_id, tcb), fresh_for=self.config.immutable_fresh_for,
                        validate=_check_der_certificate)

    def amd_cert_chain(self, product: ProductLine | str) -> Fetched:
        """The KDS ``cert_chain`` (PEM: ASK, ARK). Trust still comes from the caller's ARKs."""
        product = ProductLine(product)
        url = f"{self.config.amd_kds_url.rstrip('/')}/vcek/v1/{product.value}/cert_chain"
        return self.get(url, fresh_for=self.config.immutable_fresh_for, validate=_check_pem_chain)

    def vcek_for_report(
        self, report: bytes | AttestationReport, *, product: ProductLine | str | None = None
    ) -> SnpEndorsements:
        """VCEK and chain for an SNP report: product from its CPUID (v3+) or ``product``; chip id
        and REPORTED_TCB from the report (``fetch.product_unknown`` for a v2 report without one)."""
        parsed = report if isinstance(report, AttestationReport) else parse_report(bytes(report))
        line = ProductLine(product) if product is not None else parsed.cpuid_product
        if line is None:
            raise EvidenceError("fetch.product_unknown",
                                "the report names no CPU product (v2 report); pass the product line",
                                field="ATTESTATION_REPORT.CPUID_FAM_ID")
        if parsed.product_line is not line and not isinstance(report, AttestationReport):
            parsed = parse_report(bytes(report), product_line=line)
        if parsed.signer_info.mask_chip_key or not any(parsed.chip_id):
            raise EvidenceError("fetch.chip_id_masked", "the report's CHIP_ID is masked; KDS cannot be asked",
                                field="ATTESTATION_REPORT.CHIP_ID", offset=0x1A0)
        vcek = self.vcek(line, parsed.chip_id, parsed.reported_tcb)
        chain = self.amd_cert_chain(line)
        return SnpEndorsements(vcek.body, chain.body, (vcek, chain))

    # -- Intel PCS ----------------------------------------------------------------------------

    def _pcs(self, tee: str, path: str) -> str:
        kind = {"SGX": "sgx", "TDX": "tdx"}.get(tee.upper())
        if kind is None:
            raise ValueError(f"tee must be SGX or TDX, not {tee!r}")
        return f"{self.config.intel_pcs_url.rstrip('/')}/{kind}/certification/v4/{path}"

    def tcb_info(self, tee: str, fmspc: bytes | str) -> Fetched:
        fm = fmspc.hex() if isinstance(fmspc, bytes) else fmspc.lower()
        return self.get(self._pcs(tee, f"tcb?fmspc={urlquote(fm)}"),
                        required_headers=[(TCB_INFO_CHAIN, TCB_INFO_CHAIN_V3)],
                        validate=lambda b: _check_json_member(b, "tcbInfo"))

    def qe_identity(self, tee: str) -> Fetched:
        return self.get(self._pcs(tee, "qe/identity"), required_headers=[(QE_IDENTITY_CHAIN,)],
                        validate=lambda b: _check_json_member(b, "enclaveIdentity"))

    def pck_crl(self, ca: str) -> Fetched:
        if ca not in ("processor", "platform"):
            raise ValueError(f"ca must be processor or platform, not {ca!r}")
        return self.get(self._pcs("SGX", f"pckcrl?ca={ca}&encoding=der"), required_headers=[(PCK_CRL_CHAIN,)],
                        validate=_check_der_crl)

    def root_ca_crl(self) -> Fetched:
        return self.get(self.config.intel_root_ca_crl_url, validate=_check_der_crl)

    def collateral(self, tee: str, fmspc: bytes | str, ca: str) -> FetchedCollateral:
        """All collateral for a (TEE, FMSPC, PCK CA) triple, loaded with :meth:`Collateral.from_pcs`."""
        tcb = self.tcb_info(tee, fmspc)
        qe = self.qe_identity(tee)
        pck = self.pck_crl(ca)
        root = self.root_ca_crl()
        chain = tcb.header(TCB_INFO_CHAIN)
        qe_chain = qe.header(QE_IDENTITY_CHAIN)
        pck_chain = pck.header(PCK_CRL_CHAIN)
        assert chain is not None and qe_chain is not None and pck_chain is not None
        collateral = Collateral.from_pcs(
            tcb_info=tcb.body,
            tcb_info_issuer_chain=chain,
            qe_identity=qe.body,
            qe_identity_issuer_chain=qe_chain,
            pck_crl=pck.body,
            root_ca_crl=root.body,
            pck_crl_issuer_chain=pck_chain,
        )
        fm = fmspc.hex() if isinstance(fmspc, bytes) else fmspc.lower()
        return FetchedCollateral(collateral, tee.upper(), fm, ca, (tcb, qe, pck, root))

    def collateral_for_quote(self, quote: bytes | Quote) -> FetchedCollateral:
        """Collateral for a DCAP quote: TEE type from the header, FMSPC and PCK CA from its PCK chain."""
        q = quote if isinstance(quote, Quote) else parse_quote(bytes(quote))
        cert = q.signature_data.qe.certification_data
        if cert.cert_type != CertDataType.PCK_CERT_CHAIN:
            raise EvidenceError("dcap.certification_data_unsupported",
                                f"certification data type {cert.cert_type} carries no PCK chain to read the FMSPC from",
                                field="QE Certification Data.Certification Data Type")
        chain = parse_pck_chain(cert.data)
        tee = "TDX" if q.header.tee_type == TeeType.TDX else "SGX"
        return self.collateral(tee, chain.extensions.fmspc, chain.ca)


# -- content checks (a response that fails one is an upstream failure, never cached) ----------


def _check_json_member(body: bytes, member: str) -> None:
    try:
        doc: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or member not in doc or "signature" not in doc:
        raise ValueError(f"JSON lacks {member!r} or 'signature'")


def _check_der_crl(body: bytes) -> None:
    x509.load_der_x509_crl(body)


def _check_der_certificate(body: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KDS VCEKs with serial 0
        x509.load_der_x509_certificate(body)


def _check_pem_chain(body: bytes) -> None:
    certs = x509.load_pem_x509_certificates(body)
    if len(certs) < 2:
        raise ValueError("cert_chain must hold the ASK and the ARK")
