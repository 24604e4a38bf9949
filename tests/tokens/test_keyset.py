"""Key rotation timeline: publish before sign, retain until the last token expires, then prune."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from token_helpers import ISSUER, T0

from attestd.tokens import KeyManagementError, KeySet, RotationPolicy, issue_token, jwks, verify_token

P = timedelta(days=1)  # pre-publication
L = timedelta(hours=8)  # max token lifetime
G = timedelta(minutes=5)  # grace
US = timedelta(microseconds=1)
POLICY = RotationPolicy(pre_publication=P, max_token_lifetime=L, grace=G)
TR = T0 + timedelta(days=30)  # rotation time


@pytest.fixture(scope="module")
def rotated(keys):
    old, new = keys["ES256"], keys["RS256"]
    ks = KeySet.create(old, now=T0, policy=POLICY)
    return old, new, ks, ks.rotate(TR, new)


def kids(keys_):
    return [k.kid for k in keys_]


def test_first_key_signs_and_is_published_immediately(rotated):
    old, _, ks, _ = rotated
    assert ks.active_signer(T0).kid == old.kid
    assert kids(ks.published(T0)) == [old.kid]
    assert kids(ks.published(T0 - US)) == []  # nothing before the key exists
    with pytest.raises(KeyManagementError) as err:
        ks.active_signer(T0 - US)
    assert err.value.code == "keys.no_active_signer"


def test_rotation_publishes_before_signing(rotated):
    old, new, _, ks = rotated
    assert ks.get(old.kid).retired_at == TR + P
    assert ks.get(new.kid).activates_at == TR + P
    # before the rotation the successor is invisible
    assert kids(ks.published(TR - US)) == [old.kid]
    # from the rotation: both published, the old key still signs
    assert set(kids(ks.published(TR))) == {old.kid, new.kid}
    assert ks.active_signer(TR).kid == old.kid
    assert ks.active_signer(TR + P - US).kid == old.kid
    # the switch is exact
    assert ks.active_signer(TR + P).kid == new.kid
    # and the JWKS lists the signer first
    assert [k["kid"] for k in jwks(ks, TR)["keys"]] == [old.kid, new.kid]
    assert [k["kid"] for k in jwks(ks, TR + P)["keys"]] == [new.kid, old.kid]


def test_old_key_is_retained_until_its_last_token_expires(rotated):
    old, new, _, ks = rotated
    retention_end = TR + P + L + G
    assert ks.retention_ends(ks.get(old.kid)) == retention_end
    assert set(kids(ks.published(retention_end - US))) == {old.kid, new.kid}
    assert kids(ks.published(retention_end)) == [new.kid]
    # the last token the old key can sign (an instant before retirement, max lifetime) still verifies
    # against the JWKS published at its last valid instant
    last_sign = TR + P - timedelta(seconds=1)
    signer = ks.active_signer(last_sign)
    assert signer.kid == old.kid
    token = issue_token(
        {}, signer=signer, issuer=ISSUER, now=last_sign, lifetime=L, attestation_type="tpm", policy_hash="h",
        max_lifetime=POLICY.max_token_lifetime,
    )  # fmt: skip
    last_valid = last_sign + L - timedelta(seconds=1)
    assert last_valid < retention_end
    verify_token(token, jwks=jwks(ks, last_valid), issuer=ISSUER, now=last_valid)


def test_prune_drops_exactly_at_retention_end(rotated):
    old, new, _, ks = rotated
    end = TR + P + L + G
    assert kids(ks.prune(end - US).keys) == [old.kid, new.kid]
    assert kids(ks.prune(end).keys) == [new.kid]
    assert ks.prune(end).published(end) == ks.published(end)
    # the current key is never pruned (it has no retirement time)
    assert kids(ks.prune(end + timedelta(days=3650)).keys) == [new.kid]


def test_retired_key_refuses_to_sign(rotated):
    old, _, _, ks = rotated
    retired = ks.get(old.kid)
    kwargs = {"issuer": ISSUER, "lifetime": L, "attestation_type": "tpm", "policy_hash": "h"}
    issue_token({}, signer=retired, now=TR + P - US, **kwargs)
    with pytest.raises(KeyManagementError) as err:
        issue_token({}, signer=retired, now=TR + P, **kwargs)
    assert err.value.code == "keys.retired"
    successor = ks.active_signer(TR + P)
    with pytest.raises(KeyManagementError) as err:
        issue_token({}, signer=successor, now=TR + P - US, **kwargs)
    assert err.value.code == "keys.not_active"


def test_second_rotation_waits_for_the_first_and_chains(rotated, keys):
    old, new, _, ks = rotated
    third = keys["PS256"]
    with pytest.raises(KeyManagementError) as err:
        ks.rotate(TR + P - US, third)
    assert err.value.code == "keys.rotation_pending"
    with pytest.raises(KeyManagementError) as err:
        ks.rotate(TR + P, new)
    assert err.value.code == "keys.duplicate_kid"
    t2 = TR + P + timedelta(hours=1)  # while the first key is still retained
    ks2 = ks.rotate(t2, third)
    assert ks2.get(new.kid).retired_at == t2 + P
    assert ks2.get(old.kid).retired_at == TR + P  # unchanged
    assert set(kids(ks2.published(t2))) == {old.kid, new.kid, third.kid}
    assert ks2.active_signer(t2 + P).kid == third.kid
    assert kids(ks2.prune(t2 + P + L + G).keys) == [third.kid]


def test_rotation_refuses_a_key_from_the_future(rotated, keys):
    _, _, ks, _ = rotated
    with pytest.raises(KeyManagementError) as err:
        ks.rotate(T0 - US, keys["RS256"])
    assert err.value.code == "keys.not_yet_created"


def test_lifetime_above_the_policy_maximum_is_refused(rotated):
    _, _, ks, _ = rotated
    with pytest.raises(Exception) as err:
        issue_token(
            {}, signer=ks.active_signer(T0), issuer=ISSUER, now=T0, lifetime=L + timedelta(seconds=1),
            attestation_type="tpm", policy_hash="h", max_lifetime=POLICY.max_token_lifetime,
        )  # fmt: skip
    assert err.value.code == "token.lifetime_invalid"


def test_keyset_record_round_trip(rotated):
    _, _, _, ks = rotated
    back = KeySet.from_dict(json.loads(json.dumps(ks.to_dict())))
    assert back == ks
    assert back.policy == POLICY
    for t in (TR, TR + P, TR + P + L + G):
        assert jwks(back, t) == jwks(ks, t)
