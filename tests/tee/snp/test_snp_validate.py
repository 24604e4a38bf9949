"""Reference values: go-sev-guest's tools/check pass/fail cases on attestation.bin (expected.json)."""

from __future__ import annotations

import pytest
from snp_times import AT_GO_SEV_GUEST

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.snp import SnpReferenceValues, check_reference_values, verify_snp_report
from attestd.tee.snp.report import GuestPolicy

GOOD_CHIP = bytes.fromhex(
    "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea4"
    "64cdce40c05f63c9b610c5068b006b5d"
)
GOOD_TCB = 4901323769462652930
GOOD_POLICY = (1 << 17) | (1 << 16) | (1 << 19)  # SMT and debug allowed, ABI 0.0 (go-sev-guest goodPolicy)


@pytest.fixture(scope="module")
def verified(snp_dir, milan_chain, arks):
    return verify_snp_report(
        (snp_dir / "attestation.bin").read_bytes(),
        vcek=(snp_dir / "vcek.testcer.der").read_bytes(),
        chain=milan_chain,
        trusted_arks=arks,
        at=AT_GO_SEV_GUEST,
    )


GOOD = {
    "report_data": bytes.fromhex("0102030405") + bytes(59),
    "host_data": bytes(32),
    "family_id": bytes(16),
    "image_id": bytes(16),
    "report_id": bytes.fromhex("8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a"),
    "report_id_ma": b"\xff" * 32,
    "measurement": bytes.fromhex(
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
    ),
    "chip_id": GOOD_CHIP,
    "minimum_tcb": GOOD_TCB,
    "minimum_launch_tcb": GOOD_TCB,
    "minimum_build": 0,
    "minimum_version": "1.49",
    "require_author_key": False,
    "require_id_block": False,
    "vmpl": 0,
    "platform_info": 1,
    "guest_policy": GOOD_POLICY,
    "product_stepping": 0,
}


def test_all_good_values_pass(verified):
    assert GuestPolicy.decode(GOOD_POLICY).debug
    check_reference_values(verified, SnpReferenceValues(**GOOD))
    check_reference_values(verified, SnpReferenceValues(**{**GOOD, "permit_provisional_firmware": True}))
    check_reference_values(verified, SnpReferenceValues())


@pytest.mark.parametrize(
    "field, bad, code",
    [
        ("report_data", bytes(63) + b"\x01", "snp.report_data_mismatch"),
        ("host_data", bytes(31) + b"\x01", "snp.host_data_mismatch"),
        ("family_id", bytes(15) + b"\x01", "snp.family_id_mismatch"),
        ("image_id", bytes(15) + b"\x01", "snp.image_id_mismatch"),
        ("chip_id", GOOD_CHIP[:-1] + b"\x5e", "snp.chip_id_mismatch"),
        ("minimum_tcb", GOOD_TCB + 1, "snp.tcb_too_low"),
        ("minimum_launch_tcb", GOOD_TCB + 1, "snp.launch_tcb_too_low"),
        ("guest_policy", 1 << 17, "snp.guest_policy_violation"),  # "policy 0": SMT and debug not allowed
        ("guest_policy", GOOD_POLICY | (1 << 8), "snp.guest_policy_violation"),  # ABI 1.0 required
        ("guest_policy", GOOD_POLICY | (1 << 20), "snp.guest_policy_violation"),  # single socket required
        ("minimum_build", 90, "snp.firmware_too_old"),
        ("minimum_version", "1.50", "snp.firmware_too_old"),
        ("require_author_key", True, "snp.author_key_required"),
        ("require_id_block", True, "snp.id_block_required"),
        ("vmpl", 1, "snp.vmpl_mismatch"),
        ("platform_info", 0, "snp.platform_info_violation"),
        ("platform_info", 1 | (1 << 2), "snp.platform_info_violation"),  # ECC required
        ("minimum_guest_svn", 1, "snp.guest_svn_too_low"),
        ("product_stepping", 12, "snp.product_mismatch"),
    ],
)
def test_each_bad_value_fails(verified, field, bad, code):
    with pytest.raises(VerificationError) as info:
        check_reference_values(verified, SnpReferenceValues(**{**GOOD, field: bad}))
    assert info.value.code == code
    if field == "product_stepping":
        assert info.value.message == "expected product stepping 12, got 0"


def test_id_block_trusted_by_digest(verified):
    # attestation.bin has no ID block: its ID_KEY_DIGEST is zero, so only trusting zero passes.
    check_reference_values(
        verified, SnpReferenceValues(require_id_block=True, trusted_id_key_digests=frozenset({bytes(48)}))
    )


@pytest.mark.parametrize(
    "field, bad",
    [
        ("host_data", bytes(33)),
        ("chip_id", GOOD_CHIP + b"\x00"),
        ("report_data", bytes(65)),
        ("minimum_build", 257),
        ("vmpl", 4),
        ("vmpl", -1),
        ("minimum_version", "0.0.0"),
        ("minimum_version", "0."),
        ("minimum_version", ".0"),
        ("minimum_version", "1.256"),
        ("trusted_id_key_digests", frozenset({bytes(32)})),
    ],
)
def test_bad_reference_values_are_rejected(field, bad):
    with pytest.raises(EvidenceError) as info:
        SnpReferenceValues(**{field: bad})
    assert info.value.code == "snp.bad_reference_value" and info.value.field == field
