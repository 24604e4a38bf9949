"""ATTESTATION_REPORT parsing: exact values from the corpus, layouts, malformed input."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.tee.snp.report import (
    REPORT_SIZE,
    GuestPolicy,
    PlatformInfo,
    ProductLine,
    SigningKey,
    TcbVersion,
    parse_report,
    product_from_cpuid,
)


@pytest.fixture(scope="session")
def gsg_report(snp_dir) -> bytes:
    return (snp_dir / "attestation.bin").read_bytes()


def test_go_sev_guest_report_fields(gsg_report, gsg_expected):
    exp = gsg_expected["attestation.bin"]["expected"]["claims"]
    r = parse_report(gsg_report)
    assert r.version == exp["version"] == 2
    assert r.guest_svn == exp["guest_svn"]
    assert r.policy.raw == 0xB0000  # 720896
    assert (r.policy.smt, r.policy.debug, r.policy.abi_major, r.policy.abi_minor) == (True, True, 0, 0)
    assert not (
        r.policy.migrate_ma or r.policy.single_socket or r.policy.cxl_allow or r.policy.page_swap_disable
    )
    assert r.family_id.hex() == exp["family_id"] and r.image_id.hex() == exp["image_id"]
    assert r.vmpl == exp["vmpl"] and r.signature_algo == exp["signature_algo"]
    assert (
        r.platform_info.raw == exp["platform_info"] and r.platform_info.smt_en and not r.platform_info.tsme_en
    )
    assert r.report_data.hex() == exp["report_data"]
    assert r.measurement.hex() == exp["measurement"]
    assert r.host_data.hex() == exp["host_data"]
    assert r.id_key_digest.hex() == exp["id_key_digest"]
    assert r.author_key_digest.hex() == exp["author_key_digest"]
    assert r.report_id.hex() == exp["report_id"]
    assert r.report_id_ma.hex() == exp["report_id_ma"]
    assert r.chip_id.hex() == exp["chip_id"]
    for tcb in (r.current_tcb, r.reported_tcb, r.committed_tcb, r.launch_tcb):
        assert tcb.raw == 4901323769462652930  # 0x4405000000000002
        assert (tcb.boot_loader, tcb.tee, tcb.snp, tcb.microcode, tcb.fmc) == (2, 0, 5, 68, None)
    assert (r.current_major, r.current_minor, r.current_build) == (1, 49, 3)
    assert (r.committed_major, r.committed_minor, r.committed_build) == (1, 49, 3)
    assert r.signer_info.signing_key is SigningKey.VCEK
    assert not r.signer_info.mask_chip_key and not r.signer_info.author_key_en
    assert r.cpuid_fam_id is None and r.cpuid_product is None and r.launch_mit_vector is None
    assert r.signed_bytes == gsg_report[:0x2A0]
    # R and S are little-endian 72-byte fields.
    assert r.signature_r == int.from_bytes(gsg_report[0x2A0:0x2E8], "little")
    assert r.signature_s == int.from_bytes(gsg_report[0x2E8:0x330], "little")


def test_trustee_report_fields(trustee_dir):
    r = parse_report((trustee_dir / "snp" / "test-report.bin").read_bytes())
    assert (r.version, r.vmpl, r.policy.raw, r.guest_svn) == (2, 0, 0x3001F, 4)
    assert r.measurement.hex() == (
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    )
    assert (
        r.report_data.hex().startswith("ec6c52d7")
        and r.report_data[31] == 0xE2
        and r.report_data[32:] == bytes(32)
    )
    t = r.reported_tcb
    assert (t.boot_loader, t.tee, t.snp, t.microcode) == (3, 0, 8, 115)


@pytest.mark.parametrize(
    "name, product, model, tcb",
    [
        ("evidence-v0.json", ProductLine.MILAN, 0x01, (4, 0, 24, 219)),
        ("evidence-genoa.json", ProductLine.GENOA, 0x11, (10, 0, 23, 84)),
    ],
)
def test_v3_reports_from_azure_hcl(trustee_dir, name, product, model, tcb):
    evidence = json.loads((trustee_dir / "az-snp-vtpm" / name).read_text())
    raw = bytes(evidence["report"])[0x20 : 0x20 + REPORT_SIZE]
    r = parse_report(raw)
    assert r.version == 3 and r.vmpl == 0 and r.policy.raw == 0x3001F
    assert (r.cpuid_fam_id, r.cpuid_mod_id) == (0x19, model)
    assert r.cpuid_product is product and r.product_line is product
    t = r.reported_tcb
    assert (t.boot_loader, t.tee, t.snp, t.microcode) == tcb


def test_tcb_layouts():
    raw = 0x4405000000000002
    legacy = TcbVersion.decode(raw, turin=False)
    assert (legacy.boot_loader, legacy.tee, legacy.snp, legacy.microcode, legacy.fmc) == (2, 0, 5, 0x44, None)
    turin_raw = TcbVersion.compose(fmc=1, boot_loader=2, tee=3, snp=4, microcode=5)
    assert turin_raw.to_bytes(8, "little") == bytes([1, 2, 3, 4, 0, 0, 0, 5])
    turin = TcbVersion.decode(turin_raw, turin=True)
    assert (turin.fmc, turin.boot_loader, turin.tee, turin.snp, turin.microcode) == (1, 2, 3, 4, 5)
    assert TcbVersion.compose(boot_loader=2, tee=0, snp=5, microcode=0x44) == raw
    # The same bytes read with the other layout give other components: the layout matters.
    assert TcbVersion.decode(turin_raw, turin=False).snp == 0


def test_product_from_cpuid():
    assert product_from_cpuid(0x19, 0x01) is ProductLine.MILAN
    assert product_from_cpuid(0x19, 0x11) is ProductLine.GENOA
    assert product_from_cpuid(0x19, 0xA0) is ProductLine.GENOA
    assert product_from_cpuid(0x1A, 0x02) is ProductLine.TURIN
    assert product_from_cpuid(0x19, 0x30) is None and product_from_cpuid(0x17, 0x31) is None


def test_policy_and_platform_bits():
    p = GuestPolicy.decode(
        (1 << 17)
        | (1 << 25)
        | (1 << 24)
        | (1 << 23)
        | (1 << 22)
        | (1 << 21)
        | (1 << 20)
        | (1 << 19)
        | (1 << 18)
        | (1 << 16)
        | (3 << 8)
        | 7
    )
    assert (p.abi_major, p.abi_minor) == (3, 7)
    assert all(
        (
            p.smt,
            p.migrate_ma,
            p.debug,
            p.single_socket,
            p.cxl_allow,
            p.mem_aes_256_xts,
            p.rapl_dis,
            p.ciphertext_hiding,
            p.page_swap_disable,
        )
    )
    q = PlatformInfo.decode(0b10111110)
    assert (
        q.smt_en,
        q.tsme_en,
        q.ecc_en,
        q.rapl_dis,
        q.ciphertext_hiding_en,
        q.alias_check_complete,
        q.tio_en,
    ) == (False, True, True, True, True, True, True)


def _patched(report: bytes, offset: int, value: bytes) -> bytes:
    return report[:offset] + value + report[offset + len(value) :]


@pytest.mark.parametrize(
    "offset, value, code",
    [
        (0x00, struct.pack("<I", 1), "snp.unsupported_version"),
        (0x00, struct.pack("<I", 6), "snp.unsupported_version"),
        (0x08, struct.pack("<Q", 0x0B0000 & ~(1 << 17)), "snp.bad_policy"),
        (0x08, struct.pack("<Q", 0x0B0000 | (1 << 26)), "snp.bad_policy"),
        (0x48, struct.pack("<I", 2 << 2), "snp.bad_signer_info"),
        (0x48, struct.pack("<I", 1 << 5), "snp.reserved_nonzero"),
        (0x4C, b"\x01", "snp.reserved_nonzero"),
        (0x190, b"\x01", "snp.reserved_nonzero"),
        (0x1EB, b"\x01", "snp.reserved_nonzero"),
        (0x1F8, b"\x01", "snp.reserved_nonzero"),  # v2: mitigation vectors are reserved
        (0x29F, b"\x01", "snp.reserved_nonzero"),
        (0x330, b"\x01", "snp.reserved_nonzero"),  # after R and S
    ],
)
def test_malformed_fields(gsg_report, offset, value, code):
    with pytest.raises(EvidenceError) as info:
        parse_report(_patched(gsg_report, offset, value))
    assert info.value.code == code
    assert info.value.offset is not None and info.value.field.startswith("ATTESTATION_REPORT")


def test_v5_reads_mitigation_vectors_and_v3_cpuid(gsg_report):
    v5 = _patched(_patched(gsg_report, 0, struct.pack("<I", 5)), 0x188, bytes([0x1A, 0x02, 0x01]))
    v5 = _patched(v5, 0x1F8, struct.pack("<QQ", 0x11, 0x22))
    r = parse_report(v5)
    assert (r.launch_mit_vector, r.current_mit_vector) == (0x11, 0x22)
    assert r.cpuid_product is ProductLine.TURIN and r.product_line is ProductLine.TURIN
    # Turin layout: byte 0 is FMC, bytes 1..3 BOOT_LOADER, TEE, SNP.
    assert (r.reported_tcb.fmc, r.reported_tcb.boot_loader, r.reported_tcb.snp) == (2, 0, 0)
    v2 = parse_report(gsg_report, product_line=ProductLine.TURIN)
    assert v2.reported_tcb.fmc == 2 and v2.product_line is ProductLine.TURIN


def test_lengths(gsg_report):
    with pytest.raises(EvidenceError) as short:
        parse_report(gsg_report[:-1])
    assert short.value.code == "snp.truncated"
    with pytest.raises(EvidenceError) as long:
        parse_report(gsg_report + b"\x00")
    assert long.value.code == "snp.trailing_data" and long.value.offset == REPORT_SIZE


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_truncations_only_evidence_errors(gsg_report, data):
    n = data.draw(st.integers(0, REPORT_SIZE - 1))
    with pytest.raises(EvidenceError):
        parse_report(gsg_report[:n])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_bit_flips_parse_or_evidence_error(gsg_report, data):
    buf = bytearray(gsg_report)
    for _ in range(data.draw(st.integers(1, 8))):
        bit = data.draw(st.integers(0, REPORT_SIZE * 8 - 1))
        buf[bit // 8] ^= 1 << (bit % 8)
    try:
        r = parse_report(bytes(buf))
    except EvidenceError as err:
        assert err.code.startswith("snp.")
    else:
        assert r.raw == bytes(buf)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=REPORT_SIZE + 8))
def test_random_bytes_only_evidence_errors(blob):
    try:
        parse_report(blob)
    except EvidenceError:
        pass
