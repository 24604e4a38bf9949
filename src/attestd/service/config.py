"""Service configuration: defaults < TOML file < ``ATTESTD_*`` environment < command-line flags.

TOML keys (all optional, top level or under ``[server]``/``[storage]``/... as documented in
``docs/service.md``) use the same names as :class:`Settings` fields; the environment variable of a
field is ``ATTESTD_`` + its upper-case name (``ATTESTD_DATABASE_URL``, ``ATTESTD_PORT``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attestd.errors import AttestdError

__all__ = ["ConfigError", "Settings", "load_settings"]


class ConfigError(AttestdError):
    title = "Invalid configuration"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: directory for the SQLite database, the master key and the initial credentials file.
    data_dir: Path = Path("var/attestd")
    #: SQLAlchemy URL; default ``sqlite:///{data_dir}/attestd.db``. PostgreSQL: ``postgresql://...``.
    database_url: str | None = None
    #: URL clients use to reach this service; issuers are ``{public_url}/tenants/{name}``.
    #: Default ``http://{host}:{port}``.
    public_url: str | None = None
    #: base64 of 32 bytes; default: ``{data_dir}/master.key`` (created 0600 on first start).
    master_key: str | None = None
    default_tenant: str = "default"
    #: mode of the tenant created on first start: ``token`` | ``shared``.
    default_tenant_mode: str = "token"
    nonce_ttl_seconds: int = 300
    token_lifetime_seconds: int = 8 * 3600
    signing_alg: str = "RS256"
    #: request body limit (evidence with IMA logs can be large).
    max_body_bytes: int = 32 * 1024 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    #: seconds uvicorn waits for in-flight requests on SIGTERM.
    shutdown_timeout_seconds: int = 20
    workers: int = 1
    #: verified event logs kept per worker process for the next attestation that sends the same
    #: log with the same quoted PCR values (attestd.claims.logcache); 0 keeps none
    log_cache_entries: int = 256
    #: PEM bundle of EK manufacturer root (and intermediate) certificates. When set, enrollment
    #: requires an EK certificate that chains to them.
    ek_roots_file: str | None = None
    #: a trusted host whose last attestation is older than interval x this becomes ``stale``
    stale_margin: float = 1.5
    #: days an attestation record is kept (``attestd audit show|reverify``); records a host or an
    #: incident refers to are kept while it does. 0 keeps every record.
    attestation_retention_days: int = 30
    #: TEE trust anchors and collateral (the /attest/SevSnpVm|SgxEnclave|OpenEnclave|TdxVm routes):
    #: AMD ARK/ASK PEM files (several separated by the OS path separator), the Intel SGX Root CA,
    #: and a directory of Intel collateral (TCB info, QE identity, CRLs). Nothing is trusted by default.
    tee_amd_roots: str | None = None
    tee_intel_root: str | None = None
    tee_collateral_dir: str | None = None
    #: ``required`` (default): a TEE attestation needs a challenge nonce bound into REPORT_DATA, as
    #: the TPM route does; ``optional``: a request without ``nonce`` is accepted without freshness
    #: (Azure's behaviour; the token says ``x-attestd-nonce-verified: false``).
    tee_nonce: str = "required"
    #: fetch what the configured collateral lacks (VCEKs from AMD KDS, Intel PCS collateral), cached
    #: in ``tee_cache_dir`` (default ``{data_dir}/tee-cache``). Off by default: the service is offline.
    tee_fetch: bool = False
    tee_cache_dir: str | None = None
    #: base URLs of AMD KDS, Intel PCS and the Intel SGX Root CA CRL (defaults: the vendors')
    tee_kds_url: str | None = None
    tee_pcs_url: str | None = None
    tee_intel_root_crl_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'attestd.db'}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def issuer(self, tenant: str) -> str:
        return f"{self.base_url}/tenants/{tenant}"

    def load_master_key(self) -> bytes:
        """The master key: from the setting, else from ``{data_dir}/master.key`` (created if absent)."""
        if self.master_key:
            try:
                key = base64.b64decode(self.master_key, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != 32:
                raise ConfigError("config.master_key", "master_key must be base64 of 32 bytes",
                                  field="master_key")
            return key
        path = Path(self.data_dir) / "master.key"
        if path.exists():
            key = path.read_bytes()
            if len(key) != 32:
                raise ConfigError("config.master_key", f"{path} must hold 32 bytes", field="master_key")
            return key
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
_SECTIONS = ("server", "storage", "security", "tokens", "logging", "tenants")


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if "int" in kind and "str" not in kind:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "Path":
            return Path(str(value))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
            if not result > 0:
                raise ValueError
            return result
        if not isinstance(value, (str, int, float)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError("config.invalid_value", f"{source}: {name} has an invalid value {value!r}",
                          field=name) from None


def load_settings(config_file: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build :class:`Settings`. ``overrides`` that are ``None`` are ignored (unset CLI flags)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("config.unreadable", f"cannot read {path}: {exc.strerror}", field="config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config.syntax", f"{path}: {exc}", field="config") from None
        flat: dict[str, Any] = {}
        for key, value in doc.items():
            if key in _SECTIONS and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        for key, value in flat.items():
            if key not in _FIELDS:
                raise ConfigError("config.unknown_key", f"{path}: unknown setting {key!r}", field=key)
            values[key] = _coerce(key, value, str(path))
    env = os.environ if env is None else env
    for name in _FIELDS:
        var = "ATTESTD_" + name.upper()
        if var in env and env[var] != "":
            values[name] = _coerce(name, env[var], var)
    for name, value in overrides.items():
        if value is not None:
            if name not in _FIELDS:
                raise TypeError(f"unknown setting {name}")
            values[name] = _coerce(name, value, "--" + name.replace("_", "-"))
    settings = Settings(**values)
    if settings.default_tenant_mode not in ("token", "shared"):
        raise ConfigError("config.invalid_value", "default_tenant_mode is token or shared (create isolated tenants with POST /tenants and their signer certificates)",
                          field="default_tenant_mode")
    if settings.tee_nonce not in ("required", "optional"):
        raise ConfigError("config.invalid_value", "tee_nonce is required or optional", field="tee_nonce")
    if settings.attestation_retention_days < 0:
        raise ConfigError("config.invalid_value", "attestation_retention_days is 0 (keep every record) or more",
                          field="attestation_retention_days")
    if settings.log_cache_entries < 0:
        raise ConfigError("config.invalid_value", "log_cache_entries is 0 (keep none) or more", field="log_cache_entries")
    return settings
