"""Built-in policies, written in the policy language itself (``*.policy`` next to this module).

    >>> from attestd.policy import builtin
    >>> builtin.list()
    ('linux-secure-boot', 'secured-core', 'windows-host')
    >>> builtin.load("secured-core").version
    '1.2'

The claim names they read are listed in ``docs/policy.md`` ("Built-in policies"): the claims
engine produces exactly those.
"""

from __future__ import annotations

import builtins
from importlib import resources

from attestd.errors import EvidenceError
from attestd.policy.evaluate import Policy, compile_policy

__all__ = ["list", "load", "text"]

_SUFFIX = ".policy"


def list() -> tuple[str, ...]:  # the documented name; shadows the builtin inside this module
    """Names of the built-in policies, sorted."""
    files = resources.files(__name__)
    return tuple(sorted(f.name[: -len(_SUFFIX)] for f in files.iterdir() if f.name.endswith(_SUFFIX)))


def text(name: str) -> str:
    """The source text of built-in policy ``name``."""
    if name not in list():
        raise EvidenceError(
            "policy.unknown_builtin",
            f"no built-in policy {name!r}; built-ins: " + ", ".join(list()),
            field="name",
        )
    return resources.files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8")


def load(name: str) -> Policy:
    """Built-in policy ``name``, compiled."""
    return compile_policy(text(name))


def claim_types() -> dict[str, builtins.list[str]]:
    """For each built-in, the incoming (AttestationService) claim types it reads."""
    return {name: sorted(load(name).incoming_claim_types()) for name in list()}
