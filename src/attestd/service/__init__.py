"""The attestation service: FastAPI app, configuration, auth, nonces, problem details, metrics.

    from attestd.service import create_app, load_settings
    app = create_app(load_settings("attestd.toml"))      # ASGI; `attestd serve` runs it with uvicorn

See ``docs/service.md``.
"""

from attestd.service.app import ServiceState, bootstrap, create_app, open_state
from attestd.service.config import ConfigError, Settings, load_settings
from attestd.service.evidence import TpmEvidence

__all__ = ["ConfigError", "ServiceState", "Settings", "TpmEvidence", "bootstrap", "create_app", "load_settings",
           "open_state"]
