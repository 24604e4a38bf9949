"""Claims for a *verified* SEV-SNP report, named as Microsoft Azure Attestation names them.

Azure's SEV-SNP claims (``x-ms-isolation-tee`` of a CVM token, or the top level of a ``SevSnpVm``
token; see the Azure docs "Claim sets", "Examples of an attestation token" and the REST example
``AttestSevSnpVm.json`` in Azure/azure-rest-api-specs): byte strings are lower-case hex of the
report bytes in report order, SVNs and VMPL are JSON integers, flags are booleans.

=====================================  =================================================
claim                                  source
=====================================  =================================================
x-ms-attestation-type                  ``"sevsnpvm"``
x-ms-sevsnpvm-authorkeydigest          AUTHOR_KEY_DIGEST (hex)
x-ms-sevsnpvm-bootloader-svn           REPORTED_TCB.BOOT_LOADER (int)
x-ms-sevsnpvm-familyId                 FAMILY_ID (hex)
x-ms-sevsnpvm-guestsvn                 GUEST_SVN (int)
x-ms-sevsnpvm-hostdata                 HOST_DATA (hex)
x-ms-sevsnpvm-idkeydigest              ID_KEY_DIGEST (hex)
x-ms-sevsnpvm-imageId                  IMAGE_ID (hex)
x-ms-sevsnpvm-is-debuggable            POLICY.DEBUG (bool)
x-ms-sevsnpvm-launchmeasurement        MEASUREMENT (hex)
x-ms-sevsnpvm-microcode-svn            REPORTED_TCB.MICROCODE (int)
x-ms-sevsnpvm-migration-allowed        POLICY.MIGRATE_MA (bool)
x-ms-sevsnpvm-reportdata               REPORT_DATA (hex, 64 bytes)
x-ms-sevsnpvm-reportid                 REPORT_ID (hex)
x-ms-sevsnpvm-smt-allowed              POLICY.SMT (bool)
x-ms-sevsnpvm-snpfw-svn                REPORTED_TCB.SNP (int)
x-ms-sevsnpvm-tee-svn                  REPORTED_TCB.TEE (int)
x-ms-sevsnpvm-vmpl                     VMPL (int)
=====================================  =================================================

The SVN claims come from REPORTED_TCB, the TCB the VCEK certifies and the verifier checked.

Azure defines no claims for the remaining policy bits, platform state or firmware versions; Attestd
adds them under its own prefix ``x-attestd-sevsnpvm-`` rather than inventing ``x-ms-`` names:
``policy`` (int), ``policy-abi-major``/``-minor``, ``policy-single-socket``, ``policy-cxl-allowed``,
``policy-mem-aes-256-xts``, ``policy-rapl-dis``, ``policy-ciphertext-hiding``,
``policy-page-swap-disable``, ``platform-info`` (int) and its bits, ``chipid``, ``reportidma``,
``product``, ``signing-key``, ``author-key-en``, ``mask-chip-key``, ``report-version``,
``current-tcb``/``reported-tcb``/``committed-tcb``/``launch-tcb`` (int), ``fmc-svn`` (Turin),
``firmware-version`` (``"major.minor"``), ``firmware-build``, ``committed-firmware-version``,
``committed-firmware-build``, ``cpuid-family``/``-model``/``-stepping`` (v3+),
``launch-mit-vector``/``current-mit-vector`` (v5).
"""

from __future__ import annotations

from typing import Any

from attestd.tee.snp.report import AttestationReport, ProductLine, SigningKey

__all__ = ["ATTESTD_PREFIX", "AZURE_CLAIM_NAMES", "AZURE_PREFIX"]

AZURE_PREFIX = "x-ms-sevsnpvm-"
ATTESTD_PREFIX = "x-attestd-sevsnpvm-"

AZURE_CLAIM_NAMES = (
    "x-ms-attestation-type",
    "x-ms-sevsnpvm-authorkeydigest",
    "x-ms-sevsnpvm-bootloader-svn",
    "x-ms-sevsnpvm-familyId",
    "x-ms-sevsnpvm-guestsvn",
    "x-ms-sevsnpvm-hostdata",
    "x-ms-sevsnpvm-idkeydigest",
    "x-ms-sevsnpvm-imageId",
    "x-ms-sevsnpvm-is-debuggable",
    "x-ms-sevsnpvm-launchmeasurement",
    "x-ms-sevsnpvm-microcode-svn",
    "x-ms-sevsnpvm-migration-allowed",
    "x-ms-sevsnpvm-reportdata",
    "x-ms-sevsnpvm-reportid",
    "x-ms-sevsnpvm-smt-allowed",
    "x-ms-sevsnpvm-snpfw-svn",
    "x-ms-sevsnpvm-tee-svn",
    "x-ms-sevsnpvm-vmpl",
)


def _build_claims(
    report: AttestationReport, *, product: ProductLine, signing_key: SigningKey
) -> dict[str, Any]:
    """Claims of a report that :func:`~attestd.tee.snp.verify.verify_snp_report` verified.

    Private on purpose: claims are only ever made from verified evidence.
    """
    a, x = AZURE_PREFIX, ATTESTD_PREFIX
    tcb = report.reported_tcb
    pol = report.policy
    plat = report.platform_info
    claims: dict[str, Any] = {
        "x-ms-attestation-type": "sevsnpvm",
        a + "authorkeydigest": report.author_key_digest.hex(),
        a + "bootloader-svn": tcb.boot_loader,
        a + "familyId": report.family_id.hex(),
        a + "guestsvn": report.guest_svn,
        a + "hostdata": report.host_data.hex(),
        a + "idkeydigest": report.id_key_digest.hex(),
        a + "imageId": report.image_id.hex(),
        a + "is-debuggable": pol.debug,
        a + "launchmeasurement": report.measurement.hex(),
        a + "microcode-svn": tcb.microcode,
        a + "migration-allowed": pol.migrate_ma,
        a + "reportdata": report.report_data.hex(),
        a + "reportid": report.report_id.hex(),
        a + "smt-allowed": pol.smt,
        a + "snpfw-svn": tcb.snp,
        a + "tee-svn": tcb.tee,
        a + "vmpl": report.vmpl,
        # Attestd extensions: no Azure name exists for these.
        x + "report-version": report.version,
        x + "product": product.value,
        x + "signing-key": signing_key.name,
        x + "policy": pol.raw,
        x + "policy-abi-major": pol.abi_major,
        x + "policy-abi-minor": pol.abi_minor,
        x + "policy-single-socket": pol.single_socket,
        x + "policy-cxl-allowed": pol.cxl_allow,
        x + "policy-mem-aes-256-xts": pol.mem_aes_256_xts,
        x + "policy-rapl-dis": pol.rapl_dis,
        x + "policy-ciphertext-hiding": pol.ciphertext_hiding,
        x + "policy-page-swap-disable": pol.page_swap_disable,
        x + "platform-info": plat.raw,
        x + "platform-smt-enabled": plat.smt_en,
        x + "platform-tsme-enabled": plat.tsme_en,
        x + "platform-ecc-enabled": plat.ecc_en,
        x + "platform-rapl-disabled": plat.rapl_dis,
        x + "platform-ciphertext-hiding-enabled": plat.ciphertext_hiding_en,
        x + "platform-alias-check-complete": plat.alias_check_complete,
        x + "platform-tio-enabled": plat.tio_en,
        x + "author-key-en": report.signer_info.author_key_en,
        x + "mask-chip-key": report.signer_info.mask_chip_key,
        x + "chipid": report.chip_id.hex(),
        x + "reportidma": report.report_id_ma.hex(),
        x + "current-tcb": report.current_tcb.raw,
        x + "reported-tcb": tcb.raw,
        x + "committed-tcb": report.committed_tcb.raw,
        x + "launch-tcb": report.launch_tcb.raw,
        x + "firmware-version": f"{report.current_major}.{report.current_minor}",
        x + "firmware-build": report.current_build,
        x + "committed-firmware-version": f"{report.committed_major}.{report.committed_minor}",
        x + "committed-firmware-build": report.committed_build,
    }
    if tcb.fmc is not None:
        claims[x + "fmc-svn"] = tcb.fmc
    if report.cpuid_fam_id is not None:
        claims[x + "cpuid-family"] = report.cpuid_fam_id
        claims[x + "cpuid-model"] = report.cpuid_mod_id
        claims[x + "cpuid-stepping"] = report.cpuid_step
    if report.launch_mit_vector is not None:
        claims[x + "launch-mit-vector"] = report.launch_mit_vector
        claims[x + "current-mit-vector"] = report.current_mit_vector
    return claims
