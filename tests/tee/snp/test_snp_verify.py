"""verify_snp_report against real AMD evidence, its mutations, and a private AMD-shaped PKI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import snp_builders as B
from snp_times import AT_AZURE_2025, AT_GO_SEV_GUEST, AT_TRUSTEE

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_hcl import parse_hcl_report
from attestd.tee.snp import ProductLine, SigningKey, VerifiedSnpReport, verify_snp_report
from attestd.tee.snp.certs import load_certificates, verify_chain
from attestd.tee.snp.claims import AZURE_CLAIM_NAMES
from attestd.tee.snp.report import TcbVersion, parse_report
from attestd.tee.snp.verify import check_chip_id, check_reported_tcb


@pytest.fixture(scope="session")
def gsg(snp_dir):
    return {
        "report": (snp_dir / "attestation.bin").read_bytes(),
        "vcek": (snp_dir / "vcek.testcer.der").read_bytes(),
    }


@pytest.fixture(scope="session")
def trustee_snp(trustee_dir):
    return {
        "report": (trustee_dir / "snp" / "test-report.bin").read_bytes(),
        "vcek": (trustee_dir / "snp" / "test-vcek.der").read_bytes(),
    }


def verify_gsg(gsg, milan_chain, arks, **kw):
    args = {"vcek": gsg["vcek"], "chain": milan_chain, "trusted_arks": arks, "at": AT_GO_SEV_GUEST}
    args.update(kw)
    report = args.pop("report", gsg["report"])
    return verify_snp_report(report, **args)


def fails(code, fn, *a, **kw):
    with pytest.raises(VerificationError) as info:
        fn(*a, **kw)
    assert info.value.code == code, str(info.value)
    return info.value


# -- go-sev-guest attestation.bin: the full claim set -------------------------------------------


def test_go_sev_guest_full_claims(gsg, milan_chain, arks, gsg_expected):
    exp = gsg_expected["attestation.bin"]["expected"]["claims"]
    v = verify_gsg(gsg, milan_chain, arks, expected_report_data=bytes.fromhex("0102030405"))
    assert v.product_line is ProductLine.MILAN and v.signing_key is SigningKey.VCEK
    assert v.endorsement.product_name == "Milan-B0" and v.endorsement.product_stepping == 0
    assert v.endorsement.hwid.hex() == exp["chip_id"]
    c = v.claims
    assert set(AZURE_CLAIM_NAMES) <= set(c)
    assert c["x-ms-attestation-type"] == "sevsnpvm"
    assert c["x-ms-sevsnpvm-launchmeasurement"] == exp["measurement"]
    assert c["x-ms-sevsnpvm-reportdata"] == exp["report_data"]
    assert c["x-ms-sevsnpvm-hostdata"] == exp["host_data"]
    assert c["x-ms-sevsnpvm-idkeydigest"] == exp["id_key_digest"]
    assert c["x-ms-sevsnpvm-authorkeydigest"] == exp["author_key_digest"]
    assert c["x-ms-sevsnpvm-familyId"] == exp["family_id"]
    assert c["x-ms-sevsnpvm-imageId"] == exp["image_id"]
    assert c["x-ms-sevsnpvm-reportid"] == exp["report_id"]
    assert c["x-ms-sevsnpvm-is-debuggable"] is True
    assert c["x-ms-sevsnpvm-smt-allowed"] is True
    assert c["x-ms-sevsnpvm-migration-allowed"] is False
    assert c["x-ms-sevsnpvm-vmpl"] == 0 and c["x-ms-sevsnpvm-guestsvn"] == 0
    assert (
        c["x-ms-sevsnpvm-bootloader-svn"],
        c["x-ms-sevsnpvm-tee-svn"],
        c["x-ms-sevsnpvm-snpfw-svn"],
        c["x-ms-sevsnpvm-microcode-svn"],
    ) == (2, 0, 5, 68)
    assert c["x-attestd-sevsnpvm-policy"] == 0xB0000
    assert c["x-attestd-sevsnpvm-chipid"] == exp["chip_id"]
    assert c["x-attestd-sevsnpvm-reportidma"] == exp["report_id_ma"]
    assert c["x-attestd-sevsnpvm-reported-tcb"] == 4901323769462652930
    assert c["x-attestd-sevsnpvm-firmware-version"] == "1.49" and c["x-attestd-sevsnpvm-firmware-build"] == 3
    assert c["x-attestd-sevsnpvm-platform-info"] == 1 and c["x-attestd-sevsnpvm-platform-smt-enabled"] is True
    assert c["x-attestd-sevsnpvm-product"] == "Milan"
    json.dumps(dict(c))  # JSON-serialisable as is
    with pytest.raises(TypeError):
        c["x-ms-sevsnpvm-vmpl"] = 3  # type: ignore[index]


def test_verified_report_cannot_be_forged(gsg, milan_chain, arks):
    v = verify_gsg(gsg, milan_chain, arks)
    with pytest.raises(TypeError):
        VerifiedSnpReport(
            report=v.report,
            product_line=v.product_line,
            signing_key=v.signing_key,
            endorsement=v.endorsement,
            certificate_sha256={},
            verified_at=v.verified_at,
            claims={},
        )


def test_vcek_inside_chain_bundle(gsg, milan_chain, arks):
    v = verify_gsg(gsg, milan_chain, arks, vcek=None, chain=[gsg["vcek"], milan_chain])
    assert v.claims["x-ms-sevsnpvm-snpfw-svn"] == 5


def test_report_data_mismatch(gsg, milan_chain, arks):
    fails(
        "snp.report_data_mismatch",
        verify_gsg,
        gsg,
        milan_chain,
        arks,
        expected_report_data=bytes.fromhex(
            "01020304050000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000001"
        ),
    )


# -- mutations of real evidence -----------------------------------------------------------------


@pytest.mark.parametrize("offset", [0x90, 0x90 + 47, 0x50, 0x2A0, 0x2E8 + 71, 0x08 + 2])
def test_flipped_signed_bytes_fail_signature(gsg, milan_chain, arks, offset):
    buf = bytearray(gsg["report"])
    buf[offset] ^= 0x01
    fails("snp.signature_invalid", verify_gsg, gsg, milan_chain, arks, report=bytes(buf))


def test_trustee_report_and_its_byte_flips(trustee_snp, milan_chain, arks):
    v = verify_snp_report(
        trustee_snp["report"], vcek=trustee_snp["vcek"], chain=milan_chain, trusted_arks=arks, at=AT_TRUSTEE
    )
    assert v.claims["x-ms-sevsnpvm-guestsvn"] == 4 and v.claims["x-attestd-sevsnpvm-policy"] == 0x3001F
    # Upstream (trustee snp/mod.rs tests): byte[42] + 1 breaks the signature ...
    b42 = bytearray(trustee_snp["report"])
    b42[42] = (b42[42] + 1) % 256
    fails(
        "snp.signature_invalid",
        verify_snp_report,
        bytes(b42),
        vcek=trustee_snp["vcek"],
        chain=milan_chain,
        trusted_arks=arks,
        at=AT_TRUSTEE,
    )
    # ... and byte[384] + 1 (REPORTED_TCB.BOOT_LOADER) no longer matches the VCEK's TCB.
    b384 = bytearray(trustee_snp["report"])
    b384[384] = (b384[384] + 1) % 256
    err = fails(
        "snp.tcb_mismatch",
        verify_snp_report,
        bytes(b384),
        vcek=trustee_snp["vcek"],
        chain=milan_chain,
        trusted_arks=arks,
        at=AT_TRUSTEE,
    )
    assert err.offset == 0x180 and "boot_loader 4 != 3" in err.message
    # The same check on the parsed report, as trustee's verify_report_tcb does it.
    chain = verify_chain(vcek=trustee_snp["vcek"], chain=milan_chain, trusted_arks=arks, at=AT_TRUSTEE)
    fails("snp.tcb_mismatch", check_reported_tcb, parse_report(bytes(b384)), chain.info, ProductLine.MILAN)
    check_reported_tcb(parse_report(trustee_snp["report"]), chain.info, ProductLine.MILAN)


def test_chip_id_flip(gsg, milan_chain, arks):
    buf = bytearray(gsg["report"])
    buf[0x1A0 + 63] ^= 0x01
    err = fails("snp.chip_id_mismatch", verify_gsg, gsg, milan_chain, arks, report=bytes(buf))
    assert err.offset == 0x1A0


def test_wrong_vcek(gsg, trustee_snp, milan_chain, arks):
    # The trustee VCEK belongs to another chip at another TCB.
    fails("snp.chip_id_mismatch", verify_gsg, gsg, milan_chain, arks, vcek=trustee_snp["vcek"], at=AT_TRUSTEE)
    chain = verify_chain(vcek=trustee_snp["vcek"], chain=milan_chain, trusted_arks=arks, at=AT_TRUSTEE)
    fails(
        "snp.signature_invalid",
        __import__("attestd.tee.snp.verify", fromlist=["x"]).verify_report_signature,
        parse_report(gsg["report"]),
        chain.public_key,
    )


def test_wrong_ark(gsg, milan_chain, genoa_ark, genoa_chain):
    # Only Genoa trusted: the Milan chain's root is not a trust anchor.
    fails("snp.untrusted_root", verify_gsg, gsg, milan_chain, [genoa_ark])
    # Only the ASK in the chain, Genoa trusted: no trusted ARK issues the Milan ASK.
    ask_only = load_certificates(milan_chain)[:1]
    fails("snp.untrusted_root", verify_gsg, gsg, ask_only, [genoa_ark])
    # A look-alike ARK-Milan (same name, other key) as the only anchor: the ASK signature fails.
    impostor = B.pki("Milan").ark
    fails("snp.chain_invalid", verify_gsg, gsg, ask_only, [impostor])
    # Genoa's ASK cannot stand in for Milan's.
    genoa_ask = load_certificates(genoa_chain)[:1]
    fails("snp.chain_invalid", verify_gsg, gsg, genoa_ask, [genoa_ark])


def test_time_is_an_input(gsg, milan_chain, arks):
    fails("snp.cert_not_yet_valid", verify_gsg, gsg, milan_chain, arks, at=datetime(2022, 9, 23, tzinfo=UTC))
    fails("snp.cert_expired", verify_gsg, gsg, milan_chain, arks, at=datetime(2029, 9, 25, tzinfo=UTC))
    verify_gsg(gsg, milan_chain, arks, at=datetime(2029, 9, 24, tzinfo=UTC))
    with pytest.raises(ValueError):
        verify_gsg(gsg, milan_chain, arks, at=datetime(2023, 1, 1))


def test_tampered_vcek_signature(gsg, milan_chain, arks):
    der = bytearray(gsg["vcek"])
    der[-10] ^= 0x01  # inside the signature BIT STRING
    fails("snp.chain_invalid", verify_gsg, gsg, milan_chain, arks, vcek=bytes(der))


def test_garbage_certificates(gsg, milan_chain, arks):
    with pytest.raises(EvidenceError) as info:
        verify_gsg(gsg, milan_chain, arks, vcek=b"\x30\x03\x02\x01\x00")
    assert info.value.code == "snp.cert_malformed"


# -- Azure CVM (HCL) reports: Milan and Genoa ----------------------------------------------------


def test_hcl_report_milan(trustee_dir, milan_chain, arks):
    hcl = parse_hcl_report((trustee_dir / "az-snp-vtpm" / "hcl-report.bin").read_bytes())
    v = verify_snp_report(
        hcl.snp_report(),
        vcek=None,
        chain=(trustee_dir / "az-snp-vtpm" / "vcek.pem").read_bytes(),
        trusted_arks=arks,
        at=AT_TRUSTEE,
        expected_report_data=hcl.variable_data_digest(),
    )
    assert (
        v.report.report_data[:32].hex() == "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac"
    )
    assert v.product_line is ProductLine.MILAN and v.report.version == 2


def test_hcl_mutation_reported_tcb(trustee_dir, arks):
    raw = bytearray((trustee_dir / "az-snp-vtpm" / "hcl-report.bin").read_bytes())
    raw[0x01A6] = 0  # trustee: "SNP version mismatch"
    hcl = parse_hcl_report(bytes(raw))
    err = fails(
        "snp.tcb_mismatch",
        verify_snp_report,
        hcl.snp_report(),
        vcek=None,
        chain=(trustee_dir / "az-snp-vtpm" / "vcek.pem").read_bytes(),
        trusted_arks=arks,
        at=AT_TRUSTEE,
    )
    assert "snp 0 != 8" in err.message


@pytest.mark.parametrize(
    "name, product, tcb",
    [
        ("evidence-v0.json", ProductLine.MILAN, (4, 0, 24, 219)),
        ("evidence-genoa.json", ProductLine.GENOA, (10, 0, 23, 84)),
    ],
)
def test_hcl_evidence_v0_layout(trustee_dir, milan_chain, genoa_chain, arks, name, product, tcb):
    ev = json.loads((trustee_dir / "az-snp-vtpm" / name).read_text())
    hcl = parse_hcl_report(bytes(ev["report"]))
    ask_ark = milan_chain if product is ProductLine.MILAN else genoa_chain
    v = verify_snp_report(
        hcl.snp_report(),
        vcek=ev["vcek"],
        chain=ask_ark,
        trusted_arks=arks,
        at=AT_AZURE_2025,
        expected_report_data=hcl.variable_data_digest(),
    )
    assert v.product_line is product and v.report.version == 3
    c = v.claims
    assert (
        c["x-ms-sevsnpvm-bootloader-svn"],
        c["x-ms-sevsnpvm-tee-svn"],
        c["x-ms-sevsnpvm-snpfw-svn"],
        c["x-ms-sevsnpvm-microcode-svn"],
    ) == tcb
    assert c["x-attestd-sevsnpvm-cpuid-family"] == 0x19
    # The Genoa VCEK does not verify under the Milan chain, nor the Milan one under Genoa's.
    other = genoa_chain if product is ProductLine.MILAN else milan_chain
    fails(
        "snp.chain_invalid",
        verify_snp_report,
        hcl.snp_report(),
        vcek=ev["vcek"],
        chain=other,
        trusted_arks=arks,
        at=AT_AZURE_2025,
    )


def test_hcl_evidence_v1_base64url(trustee_dir, arks, milan_chain):
    import base64

    ev = json.loads((trustee_dir / "az-snp-vtpm" / "evidence-v1.json").read_text())
    pad = lambda s: s + "=" * (-len(s) % 4)
    hcl = parse_hcl_report(base64.urlsafe_b64decode(pad(ev["hcl_report"])))
    vcek = base64.urlsafe_b64decode(pad(ev["vcek"]))
    v = verify_snp_report(hcl.snp_report(), vcek=vcek, chain=milan_chain, trusted_arks=arks, at=AT_AZURE_2025)
    assert v.report.report_data[:32] == hcl.variable_data_digest()


def test_cpuid_product_must_match_chain(trustee_dir, genoa_chain, genoa_ark):
    # A Genoa chain with a report whose CPUID says Milan: re-sign with a private VCEK so only the
    # product check can fail.
    p = B.pki("Genoa")
    ev = json.loads((trustee_dir / "az-snp-vtpm" / "evidence-genoa.json").read_text())
    base = parse_hcl_report(bytes(ev["report"])).snp_report()
    hwid = base[0x1A0:0x1E0]
    tcb = {"boot_loader": 10, "tee": 0, "snp": 23, "microcode": 84}
    vcek = B.endorsement_cert(p, tcb=tcb, hwid=hwid, product_name="Genoa")
    good = B.make_report(base)
    verify_snp_report(good, vcek=vcek, chain=[p.ask], trusted_arks=[p.ark], at=B.AT)
    milan_cpuid = B.make_report(base, cpuid=(0x19, 0x01, 0x01))
    fails(
        "snp.product_mismatch",
        verify_snp_report,
        milan_cpuid,
        vcek=vcek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )
    unknown = B.make_report(base, cpuid=(0x17, 0x31, 0x00))
    fails(
        "snp.product_mismatch",
        verify_snp_report,
        unknown,
        vcek=vcek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )


# -- Turin, VLEK and masked CHIP_ID with a private AMD-shaped PKI --------------------------------


def test_turin_layout_end_to_end(gsg):
    p = B.pki("Turin")
    tcb = {"fmc": 1, "boot_loader": 2, "tee": 3, "snp": 4, "microcode": 5}
    raw = TcbVersion.compose(**tcb)
    hwid = bytes(range(1, 9))  # Turin hwID is 8 bytes
    vcek = B.endorsement_cert(p, tcb=tcb, hwid=hwid, product_name="Turin-B0")
    report = B.make_report(gsg["report"], version=3, cpuid=(0x1A, 0x02, 0x00), tcb_raw=raw, chip_id=hwid)
    v = verify_snp_report(report, vcek=vcek, chain=[p.ask, p.ark], trusted_arks=[p.ark], at=B.AT)
    assert v.product_line is ProductLine.TURIN
    assert v.claims["x-attestd-sevsnpvm-fmc-svn"] == 1
    assert (
        v.claims["x-ms-sevsnpvm-bootloader-svn"],
        v.claims["x-ms-sevsnpvm-tee-svn"],
        v.claims["x-ms-sevsnpvm-snpfw-svn"],
        v.claims["x-ms-sevsnpvm-microcode-svn"],
    ) == (2, 3, 4, 5)
    # A Turin report whose FMC differs from the VCEK's fmcSPL.
    bad_fmc = B.make_report(report, tcb_raw=TcbVersion.compose(**{**tcb, "fmc": 9}))
    err = fails(
        "snp.tcb_mismatch",
        verify_snp_report,
        bad_fmc,
        vcek=vcek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )
    assert "fmc 9 != 1" in err.message
    # The 8-byte hwID is compared with CHIP_ID's first 8 bytes, the rest must be zero.
    bad_chip = B.make_report(report, chip_id=hwid + b"\x01")
    fails(
        "snp.chip_id_mismatch",
        verify_snp_report,
        bad_chip,
        vcek=vcek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )
    # A v2 report (no CPUID) decodes its TCB with the chain's product layout.
    v2 = B.make_report(report, version=2, cpuid=(0, 0, 0))
    assert (
        verify_snp_report(v2, vcek=vcek, chain=[p.ask], trusted_arks=[p.ark], at=B.AT).report.reported_tcb.fmc
        == 1
    )


def test_masked_chip_id(gsg):
    p = B.pki("Milan")
    tcb = {"boot_loader": 2, "tee": 0, "snp": 5, "microcode": 68}
    hwid = gsg["report"][0x1A0:0x1E0]
    vcek = B.endorsement_cert(p, tcb=tcb, hwid=hwid, product_name="Milan-B0")
    masked = B.make_report(gsg["report"], chip_id=bytes(64), signer_info=0b010)
    v = verify_snp_report(masked, vcek=vcek, chain=[p.ask], trusted_arks=[p.ark], at=B.AT)
    assert v.claims["x-attestd-sevsnpvm-mask-chip-key"] is True
    unmasked_zero = B.make_report(gsg["report"], chip_id=bytes(64))
    fails(
        "snp.chip_id_mismatch",
        verify_snp_report,
        unmasked_zero,
        vcek=vcek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )


def test_vlek_chain_and_signing_key(gsg, snp_dir, milan_ark):
    p = B.pki("Milan", vlek=True)
    tcb = {"boot_loader": 2, "tee": 0, "snp": 5, "microcode": 68}
    vlek = B.endorsement_cert(p, tcb=tcb, hwid=None, product_name="Milan-B0", vlek=True)
    report = B.make_report(gsg["report"], signer_info=1 << 2)
    v = verify_snp_report(report, vcek=vlek, chain=[p.ask], trusted_arks=[p.ark], at=B.AT)
    assert v.signing_key is SigningKey.VLEK and v.endorsement.csp_id == "csp.example"
    # The report says VCEK but a VLEK is given.
    fails(
        "snp.signing_key_mismatch",
        verify_snp_report,
        B.make_report(gsg["report"]),
        vcek=vlek,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )
    # AMD's real ASVK chain verifies against the real Milan ARK.
    asvk, ark = load_certificates((snp_dir / "ask_ark_milan_vlek.pem").read_bytes())
    assert asvk.subject != ark.subject and ark.subject == milan_ark.subject


def test_stale_vcek_is_a_tcb_mismatch(gsg):
    # The usual field failure: a VCEK fetched for an older TCB than the one reported.
    p = B.pki("Milan")
    hwid = gsg["report"][0x1A0:0x1E0]
    stale = B.endorsement_cert(
        p, tcb={"boot_loader": 2, "tee": 0, "snp": 4, "microcode": 68}, hwid=hwid, product_name="Milan-B0"
    )
    report = B.make_report(gsg["report"])
    err = fails(
        "snp.tcb_mismatch",
        verify_snp_report,
        report,
        vcek=stale,
        chain=[p.ask],
        trusted_arks=[p.ark],
        at=B.AT,
    )
    assert err.details["certified"]["snp"] == 4 and err.details["reported"]["snp"] == 5


def test_check_chip_id_skips_vlek_and_masked(gsg, snp_dir):
    chain = verify_chain(
        vcek=gsg["vcek"],
        chain=(snp_dir / "ask_ark_milan_vcek.pem").read_bytes(),
        trusted_arks=load_certificates((snp_dir / "ask_ark_milan_vcek.pem").read_bytes())[1:],
        at=AT_GO_SEV_GUEST,
    )
    report = parse_report(gsg["report"])
    check_chip_id(report, chain.info)
    assert chain.fingerprints()["ark"] != chain.fingerprints()["ask"]
    assert timedelta(0) < chain.leaf.not_valid_after_utc - AT_GO_SEV_GUEST
