"""TPM 2.0 constants used by the structures in :mod:`attestd.tpm`.

Values from TCG TPM 2.0 Library, Part 2: Structures (Revision 01.59):

* 6.2 ``TPM_GENERATED`` - the magic at the start of every TPM-generated attestation;
* 6.4 ``TPM_ECC_CURVE`` - curve identifiers;
* 6.9 ``TPM_ST`` - structure tags, of which the ``TPM_ST_ATTEST_*`` values select the member of
  ``TPMU_ATTEST``;
* 8.3 ``TPMA_OBJECT`` - object attribute bits.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = ["TPMA_OBJECT", "TPM_ECC_CURVE", "TPM_GENERATED_VALUE", "TPM_RH_NULL", "TPM_ST"]

#: ``TPM_GENERATED_VALUE`` (Part 2, 6.2): 0xff followed by "TCG".
TPM_GENERATED_VALUE = 0xFF544347

#: ``TPM_RH_NULL`` (Part 2, 7.4): the handle whose Name is used when a command has no object.
TPM_RH_NULL = 0x40000007


class TPM_ST(IntEnum):
    """``TPM_ST`` structure tags (Part 2, 6.9) used in ``TPMS_ATTEST.type``."""

    ATTEST_NV = 0x8014
    ATTEST_COMMAND_AUDIT = 0x8015
    ATTEST_SESSION_AUDIT = 0x8016
    ATTEST_CERTIFY = 0x8017
    ATTEST_QUOTE = 0x8018
    ATTEST_TIME = 0x8019
    ATTEST_CREATION = 0x801A
    ATTEST_NV_DIGEST = 0x801C


class TPM_ECC_CURVE(IntEnum):
    """``TPM_ECC_CURVE`` (Part 2, 6.4)."""

    NONE = 0x0000
    NIST_P192 = 0x0001
    NIST_P224 = 0x0002
    NIST_P256 = 0x0003
    NIST_P384 = 0x0004
    NIST_P521 = 0x0005
    BN_P256 = 0x0010
    BN_P638 = 0x0011
    SM2_P256 = 0x0020


class TPMA_OBJECT(IntFlag):
    """``TPMA_OBJECT`` attribute bits (Part 2, 8.3)."""

    FIXED_TPM = 1 << 1
    ST_CLEAR = 1 << 2
    FIXED_PARENT = 1 << 4
    SENSITIVE_DATA_ORIGIN = 1 << 5
    USER_WITH_AUTH = 1 << 6
    ADMIN_WITH_POLICY = 1 << 7
    NO_DA = 1 << 10
    ENCRYPTED_DUPLICATION = 1 << 11
    RESTRICTED = 1 << 16
    DECRYPT = 1 << 17
    SIGN_ENCRYPT = 1 << 18
    X509_SIGN = 1 << 19
