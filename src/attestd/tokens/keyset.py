"""Signing-key rotation as pure functions of ``now``.

Timeline of one rotation (``P`` = pre-publication period, ``L`` = max token lifetime, ``G`` = grace)::

    t_r                 t_r + P                                   t_r + P + L + G
    |  rotate(t_r, new) |                                          |
    |  new published,   |  new signs; old retired_at = t_r + P,    |  old dropped from the JWKS
    |  old still signs  |  old still published (its tokens live)  |  (prune removes it)

* A new key enters the JWKS at the rotation (its ``published_at``) and becomes the signer ``P`` later,
  so relying parties that refresh the JWKS at least every ``P`` know it before they see its tokens.
* The old key signs until exactly ``t_r + P`` (its ``retired_at``). Its last token expires no later
  than ``retired_at + L``; it stays published until ``retired_at + L + G`` (``G`` covers verifier
  clock skew / leeway), then :meth:`KeySet.published` omits it and :meth:`KeySet.prune` drops it.

Intervals are half-open: a key signs on ``[activates_at, retired_at)`` and is published on
``[published_at, retired_at + L + G)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._jose import utc
from .errors import KeyManagementError
from .keys import SigningKey

__all__ = ["KEYSET_RECORD_FORMAT", "KeySet", "RotationPolicy"]

KEYSET_RECORD_FORMAT = "attestd.keyset/1"


@dataclass(frozen=True)
class RotationPolicy:
    """How long a new key is published before it signs, and how long tokens live."""

    pre_publication: timedelta = timedelta(days=2)
    max_token_lifetime: timedelta = timedelta(hours=8)
    grace: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.pre_publication < timedelta(0) or self.grace < timedelta(0):
            raise KeyManagementError("keys.invalid_policy", "pre_publication and grace must be >= 0")
        if self.max_token_lifetime <= timedelta(0):
            raise KeyManagementError("keys.invalid_policy", "max_token_lifetime must be > 0")

    @property
    def retention(self) -> timedelta:
        """How long a key stays published after it retires."""
        return self.max_token_lifetime + self.grace

    def to_dict(self) -> dict[str, float]:
        return {
            "pre_publication_seconds": self.pre_publication.total_seconds(),
            "max_token_lifetime_seconds": self.max_token_lifetime.total_seconds(),
            "grace_seconds": self.grace.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RotationPolicy:
        return cls(
            timedelta(seconds=data["pre_publication_seconds"]),
            timedelta(seconds=data["max_token_lifetime_seconds"]),
            timedelta(seconds=data["grace_seconds"]),
        )


@dataclass(frozen=True)
class KeySet:
    """An immutable set of signing keys plus the rotation policy; every query takes ``now``."""

    keys: tuple[SigningKey, ...]
    policy: RotationPolicy = RotationPolicy()

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(sorted(self.keys, key=lambda k: (k.activates_at, k.kid))))
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise KeyManagementError("keys.duplicate_kid", "two keys share a kid")

    @classmethod
    def create(cls, first: SigningKey, *, now: datetime, policy: RotationPolicy = RotationPolicy()) -> KeySet:
        """A key set whose first key is published and signs from ``now`` (no tokens exist to wait for)."""
        now = utc(now)
        if first.created > now:
            raise KeyManagementError("keys.not_yet_created", "the first key was created after now")
        return cls((first.with_schedule(published_at=now, activates_at=now),), policy)

    # -- queries ---------------------------------------------------------------------------------
    def active_signer(self, now: datetime) -> SigningKey:
        """The key that signs at ``now``: the most recently activated key that is not retired."""
        now = utc(now)
        candidates = [k for k in self.keys if k.can_sign(now)]
        if not candidates:
            raise KeyManagementError(
                "keys.no_active_signer", f"no signing key is active at {now.isoformat()}"
            )
        return max(candidates, key=lambda k: k.activates_at)

    def published(self, now: datetime) -> tuple[SigningKey, ...]:
        """The keys a relying party must see in the JWKS at ``now`` (signer, successor, predecessors)."""
        now = utc(now)
        return tuple(k for k in self.keys if k.published_at <= now and not self._expired(k, now))

    def retention_ends(self, key: SigningKey) -> datetime | None:
        """When ``key`` leaves the JWKS (``None`` while it has no retirement time)."""
        return None if key.retired_at is None else key.retired_at + self.policy.retention

    def get(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def _expired(self, key: SigningKey, now: datetime) -> bool:
        end = self.retention_ends(key)
        return end is not None and now >= end

    # -- transitions -----------------------------------------------------------------------------
    def rotate(self, now: datetime, new_key: SigningKey) -> KeySet:
        """Publish ``new_key`` now; it signs from ``now + pre_publication``, when the current signer retires.

        Refuses (``keys.rotation_pending``) while an earlier successor is still waiting to activate.
        """
        now = utc(now)
        if new_key.created > now:
            raise KeyManagementError("keys.not_yet_created", "the new key was created after now")
        if self.get(new_key.kid) is not None:
            raise KeyManagementError("keys.duplicate_kid", f"key {new_key.kid} is already in the key set")
        if any(k.activates_at > now for k in self.keys):
            raise KeyManagementError("keys.rotation_pending", "a published successor has not activated yet")
        switch = now + self.policy.pre_publication
        current = self.active_signer(now)
        keys = [k.with_schedule(retired_at=switch) if k.kid == current.kid else k for k in self.keys]
        keys.append(new_key.with_schedule(published_at=now, activates_at=switch))
        return KeySet(tuple(keys), self.policy)

    def prune(self, now: datetime) -> KeySet:
        """Drop keys whose retention ended (their last token expired): ``now >= retired_at + L + G``."""
        now = utc(now)
        return KeySet(tuple(k for k in self.keys if not self._expired(k, now)), self.policy)

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": KEYSET_RECORD_FORMAT,
            "policy": self.policy.to_dict(),
            "keys": [k.to_dict() for k in self.keys],
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> KeySet:
        if record.get("format") != KEYSET_RECORD_FORMAT:
            raise KeyManagementError(
                "keys.invalid_record", f"unknown key set format {record.get('format')!r}"
            )
        try:
            policy = RotationPolicy.from_dict(record["policy"])
            keys = tuple(SigningKey.from_dict(k) for k in record["keys"])
        except (KeyError, TypeError) as exc:
            raise KeyManagementError("keys.invalid_record", f"invalid key set record: {exc}") from exc
        return cls(keys, policy)
