"""Claims from real public evidence in ../shared/corpus, checked against what INDEX.md records."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestd.claims import build_claims, inspect_eventlog, verify_eventlog, verify_tpm_evidence
from attestd.tpm import parse_gotpm_attestation

pytestmark = pytest.mark.corpus


def _pcrs(doc: dict) -> dict:
    return {bank: {int(i): bytes.fromhex(v) for i, v in values.items()} for bank, values in doc.items()}


def _fingerprint(path) -> str:
    data = path.read_bytes()
    cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@pytest.fixture(scope="module")
def gotpm(corpus):
    return json.loads((corpus / "go-tpm-tools" / "expected_eventlogs.json").read_text())


def _gotpm_claims(corpus, gotpm, name):
    case = gotpm[name]
    log = (corpus / "go-tpm-tools" / case["file"].split("/")[-1]).read_bytes()
    return build_claims(verify_eventlog(log, _pcrs(case["pcrs"])))


def test_ubuntu_gce_sev_secure_boot_databases(corpus, gotpm):
    """INDEX.md: db = Microsoft Windows Production PCA 2011 + Microsoft UEFI CA 2011 (no hashes),
    PK = the GCE default PK, KEK = Microsoft KEK CA 2011 - identified by certificate fingerprint."""
    claims = _gotpm_claims(corpus, gotpm, "UbuntuAmdSevGCE")
    sb = corpus / "go-tpm-tools" / "secure-boot"
    dbs = claims.uefi.databases
    assert [c.sha256 for c in dbs["PK"].certificates] == [_fingerprint(sb / "GcePk.crt")]
    assert [c.sha256 for c in dbs["KEK"].certificates] == [_fingerprint(sb / "MicCorKEKCA2011_2011-06-24.crt")]
    assert sorted(c.sha256 for c in dbs["db"].certificates) == sorted(
        [_fingerprint(sb / "MicWinProPCA2011_2011-10-19.crt"), _fingerprint(sb / "MicCorUEFCA2011_2011-06-27.crt")])
    assert dbs["db"].digests == ()
    flat = claims.flat(())
    assert set(flat["secureBootDb"]) == {"Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"}
    assert flat["secureBootKek"] == ["Microsoft Corporation KEK CA 2011"]
    assert flat["kernelCommandLine"] == "root=LABEL=cloudimg-rootfs ro console=ttyS0"
    assert flat["kernelImagePath"] == "/boot/vmlinuz-5.4.0-1046-gcp"
    # the log's own SecureBoot variable is 0 (INDEX.md's "Secure Boot on" is the VM's configuration)
    assert flat["secureBootEnabled"] is False


@pytest.mark.parametrize("name", ["COS85AmdSev", "COS93AmdSev"])
def test_cos_kernel_command_line(corpus, gotpm, name):
    claims = _gotpm_claims(corpus, gotpm, name)
    expected = gotpm[name]["expected_linux_kernel_cmdline"]
    assert claims.boot.kernel_command_line_raw == expected.rstrip("\0")
    flat = claims.flat(())
    assert expected.startswith(flat["kernelImagePath"] + " ")
    assert flat["secureBootEnabled"] is True and flat["bootApplications"] == ["shim", "grub", "kernel"]
    # GRUB read exactly two files: grub.cfg and the kernel
    assert len(claims.boot.files) == 2 and claims.boot.kernel is claims.boot.files[1]


@pytest.mark.parametrize("name", sorted(
    ["Rhel8GCE", "UbuntuAmdSevGCE", "Ubuntu2104NoDbxGCE", "Ubuntu2104NoSecureBootGCE", "GlinuxNoSecureBootLaptop",
     "ArchLinuxWorkstation", "Debian10GCE", "COS85AmdSev", "COS93AmdSev"]))
def test_every_gotpm_log_yields_claims_from_its_tpm_pcrs(corpus, gotpm, name):
    claims = _gotpm_claims(corpus, gotpm, name)
    assert claims.evidence.unverified_pcrs == ()
    apps = [a for a in claims.boot.applications]
    # expected_efi_app_digests: the PCR 4 application digests per bank, in order
    for bank, digests in gotpm[name]["expected_efi_app_digests"].items():
        assert [a.digests[bank] for a in apps] == digests


def test_arch_systemd_boot(corpus, gotpm):
    flat = _gotpm_claims(corpus, gotpm, "ArchLinuxWorkstation").flat(())
    assert flat["bootApplications"] == ["systemd-boot", "kernel"]
    # the zero-length SecureBoot variable is not "enabled"
    assert flat["secureBootEnabled"] is False
    assert "initrd=\\initramfs-linux-lts.img" in flat["kernelParameters"]


@pytest.mark.parametrize("file,enabled", [("binary_bios_measurements", False),
                                          ("binary_bios_measurements-secureboot", True)])
def test_keylime_physical_machines(corpus, file, enabled):
    claims = build_claims(inspect_eventlog((corpus / "keylime" / file).read_bytes()))
    assert claims.flat(())["secureBootEnabled"] is enabled
    assert claims.uefi.secure_boot is enabled


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


def test_windows_gcp_full_verification(corpus):
    """The Windows Shielded VM: quote, 24 SHA-1 PCRs and the WBCL, verified, then claims."""
    doc = json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())
    pcrs = {"sha1": {p["Index"]: _b64(p["Digest"]) for p in doc["Log"]["PCRs"]}}
    ev = verify_tpm_evidence(ak=_b64(doc["AK"]["Public"]), quote=_b64(doc["Quote"]["Quote"]),
                             signature=_b64(doc["Quote"]["Signature"]), nonce=b"", pcrs=pcrs,
                             eventlog=_b64(doc["Log"]["Raw"]))
    assert ev.provenance == "quote" and ev.verified_pcrs >= {0, 4, 5, 7, 11, 12, 13, 14}
    claims = build_claims(ev)
    flat = claims.flat(())
    assert flat["secureBootEnabled"] is True
    assert flat["aikValidated"] is False  # no AK certificate, no enrollment
    assert flat["aikPubHash"] == base64.b64encode(hashlib.sha256(ev.ak.spki_der()).digest()).decode()
    assert claims.windows is not None
    assert flat["codeIntegrityEnabled"] is True and flat["depEnabled"] is True
    assert flat["bitlockerUnlocks"] == [0, 0]


@pytest.mark.parametrize("file,nonce", [("gce-cos-85-nonce9009.pb", b"\x90\x09"), ("gce-cos-85-no-nonce.pb", b"")])
def test_gce_attestation_with_ak_certificate(corpus, file, nonce):
    """go-tpm-tools' GCE attestations: 3 quotes (sha1/sha256/sha384), the log, and an AK certificate
    that chains to tpm_ek_root_1.cer through tpm_ek_intermediate_2.crt."""
    att = parse_gotpm_attestation((corpus / "go-tpm-tools" / file).read_bytes())
    d = corpus / "go-tpm-tools"
    ev = verify_tpm_evidence(
        ak=att.ak_pub, quote=[q.quote for q in att.quotes], signature=[q.raw_sig for q in att.quotes],
        nonce=nonce, pcrs=att.pcrs(), eventlog=att.event_log,
        ak_certificate=[att.ak_cert, (d / "tpm_ek_intermediate_2.crt").read_bytes()],
        ak_roots=[(d / "tpm_ek_root_1.cer").read_bytes()],
        at=x509.load_der_x509_certificate(att.ak_cert).not_valid_before_utc)
    assert ev.ak_validated and ev.ak_validation == "certificate"
    flat = build_claims(ev).flat(())
    assert flat["aikValidated"] is True and flat["secureBootEnabled"] is True
    assert flat["bootApplications"] == ["shim", "grub", "kernel"]
    assert set(ev.pcrs) == {"sha1", "sha256", "sha384"}
