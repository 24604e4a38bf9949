"""The TPM evidence document (``POST /tenants/{t}/attest/Tpm``) as pydantic models.

``docs/evidence.schema.json`` is the JSON Schema of this document; ``tests/service`` checks that it
and :func:`TpmEvidence.model_json_schema` accept and refuse the same documents.

Binary members are base64 (standard or URL-safe alphabet, padding optional). A value that does
not decode, or has an impossible length, is refused with a 400 problem naming the member
(``quotes.0.signature``, ``pcrs.sha256.7``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["B64", "BANK_SIZES", "Quote", "RuntimeData", "TpmEvidence", "decode_b64"]

#: PCR banks accepted and their digest sizes.
BANK_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sm3_256": 32}
MAX_PCR = 23

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"


def _b64_text(value: object) -> bool:
    """Whether ``value`` is base64 text: the standard or URL-safe alphabet, then at most two
    ``=`` (``[A-Za-z0-9+/_-]*={0,2}``, the JSON schema's pattern). Deleting the alphabet's bytes
    leaves only the padding: 5x faster than the regular expression on a 20 KB event log, and that
    check runs on every attestation."""
    if not isinstance(value, str) or not value.isascii():
        return False
    data = value.encode("ascii")
    rest = data.translate(None, _B64_ALPHABET)
    return rest in (b"", b"=", b"==") and data.endswith(rest)


def decode_b64(value: str) -> bytes:
    if not _b64_text(value):
        raise ValueError("not base64 (standard or URL-safe alphabet)")
    body = value.rstrip("=")
    if len(body) % 4 == 1:
        raise ValueError("not base64: impossible length")
    std = body.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def check_b64(value: str) -> int:
    """The decoded length of base64 ``value``, checked as :func:`decode_b64` checks it, without
    decoding (the validators run on every request; the bytes are decoded once, where used)."""
    if not _b64_text(value):
        raise ValueError("not base64 (standard or URL-safe alphabet)")
    n = len(value.rstrip("="))
    if n % 4 == 1:
        raise ValueError("not base64: impossible length")
    return n * 3 // 4


def _b64_nonempty(value: str) -> str:
    if not check_b64(value):
        raise ValueError("must not be empty")
    return value


def _ak(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        if "-----END" not in value:
            raise ValueError("PEM without an END line")
        return value
    if not check_b64(value):
        raise ValueError("must not be empty")
    return value


B64 = Annotated[str, Field(min_length=4, json_schema_extra={"contentEncoding": "base64"}),
                AfterValidator(_b64_nonempty)]


class Quote(BaseModel):
    """One TPM2_Quote: the signed ``TPMS_ATTEST`` and its ``TPMT_SIGNATURE``."""

    model_config = ConfigDict(extra="forbid")

    quote: Annotated[B64, Field(max_length=4096, description="TPMS_ATTEST (TPM2B_ATTEST.attestationData), base64")]
    signature: Annotated[B64, Field(max_length=2048, description="TPMT_SIGNATURE, base64")]


class RuntimeData(BaseModel):
    """Data the attester binds to the quote (Azure's ``runtimeData``): the quote's extraData is then
    ``SHA-256(nonce || data)`` instead of the nonce."""

    model_config = ConfigDict(extra="forbid")

    data: Annotated[B64, Field(max_length=65536, description="the bytes, base64/base64url")]
    dataType: Literal["Binary", "JSON"] = Field("Binary", description="JSON: the bytes are a UTF-8 JSON object, "
                                                "issued as the x-ms-runtime claim")

    @model_validator(mode="after")
    def _json(self) -> RuntimeData:
        if self.dataType == "JSON":
            try:
                doc = json.loads(decode_b64(self.data).decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise ValueError("dataType is JSON but data is not UTF-8 JSON") from None
            if not isinstance(doc, dict):
                raise ValueError("dataType JSON data must be a JSON object")
        return self


PcrBanks = dict[
    Annotated[str, Field(pattern=r"^(sha1|sha256|sha384|sha512|sm3_256)$")],
    dict[Annotated[str, Field(pattern=r"^([0-9]|1[0-9]|2[0-3])$")],
         Annotated[str, Field(pattern=r"^([0-9a-fA-F]{2}){20,64}$")]],
]


class TpmEvidence(BaseModel):
    """Evidence of one TPM 2.0 host."""

    model_config = ConfigDict(extra="forbid", title="TpmEvidence")

    ak: Annotated[str, Field(min_length=4, max_length=16384,
                             description="attestation key: TPM2B_PUBLIC or TPMT_PUBLIC (base64), or a PEM "
                                         "SubjectPublicKeyInfo"),
                  AfterValidator(_ak)]
    quote: Annotated[B64 | None, Field(max_length=4096, description="TPMS_ATTEST, base64 (or use quotes)")] = None
    signature: Annotated[B64 | None, Field(max_length=2048, description="TPMT_SIGNATURE, base64")] = None
    quotes: Annotated[list[Quote] | None, Field(min_length=1, max_length=8,
                                                description="several quotes (e.g. one per PCR bank)")] = None
    pcrs: Annotated[PcrBanks, Field(description='PCR values: {"sha256": {"0": "hex", ...}, ...}')]
    eventLog: Annotated[B64 | None, Field(max_length=16 * 1024 * 1024,
                                          description="TCG firmware event log (binary_bios_measurements), base64")] = None
    imaLog: Annotated[B64 | None, Field(max_length=24 * 1024 * 1024,
                                        description="IMA log, binary or ASCII runtime measurements, base64")] = None
    nonce: Annotated[str, Field(min_length=1, max_length=128, description="the nonce from POST .../challenge")]
    runtimeData: RuntimeData | None = None
    draftPolicyForAttestation: Annotated[str | None, Field(
        max_length=1024 * 1024, description="policy text or JWS to evaluate instead of the tenant's policy; "
                                            "needs the tenant's admin token; the token is marked draft")] = None

    @field_validator("pcrs")
    @classmethod
    def _pcr_sizes(cls, pcrs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for bank, values in pcrs.items():
            for index, value in values.items():
                if len(value) != 2 * BANK_SIZES[bank]:
                    raise ValueError(f"pcrs.{bank}.{index}: a {bank} PCR value has {BANK_SIZES[bank]} bytes "
                                     f"({2 * BANK_SIZES[bank]} hex digits), not {len(value) // 2}")
        if not any(pcrs.values()):
            raise ValueError("pcrs: no PCR values")
        return pcrs

    @model_validator(mode="after")
    def _shape(self) -> TpmEvidence:
        # Messages start with the member at fault: the API names it as the problem's field.
        single = self.quote is not None or self.signature is not None
        if single and self.quotes is not None:
            raise ValueError("quotes: give quote+signature or quotes, not both")
        if not single and self.quotes is None:
            raise ValueError("quote: quote and signature (or quotes) are required")
        if self.quote is None and self.signature is None:
            pass
        elif self.quote is None:
            raise ValueError("quote: signature without quote")
        elif self.signature is None:
            raise ValueError("signature: quote without signature")
        return self

    # -- decoded views ---------------------------------------------------------------------------
    def quote_list(self) -> list[tuple[bytes, bytes]]:
        if self.quotes is not None:
            return [(decode_b64(q.quote), decode_b64(q.signature)) for q in self.quotes]
        assert self.quote is not None and self.signature is not None
        return [(decode_b64(self.quote), decode_b64(self.signature))]

    def ak_bytes(self) -> bytes:
        if self.ak.lstrip().startswith("-----BEGIN"):
            return self.ak.encode()
        return decode_b64(self.ak)

    def pcr_values(self) -> dict[str, dict[int, bytes]]:
        return {bank: {int(i): bytes.fromhex(v) for i, v in values.items()} for bank, values in self.pcrs.items()}

    def runtime_bytes(self) -> bytes | None:
        return None if self.runtimeData is None else decode_b64(self.runtimeData.data)

    def runtime_json(self) -> dict[str, Any] | None:
        if self.runtimeData is None or self.runtimeData.dataType != "JSON":
            return None
        return json.loads(decode_b64(self.runtimeData.data))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the evidence document (``docs/evidence.schema.json`` is this, dumped).

    Pydantic's schema, plus what pydantic checks in code: PCR maps take no other keys, and exactly
    one of ``quote``+``signature`` or ``quotes``.
    """
    schema = TpmEvidence.model_json_schema()
    pcrs = schema["properties"]["pcrs"]
    index = r"^([0-9]|1[0-9]|2[0-3])$"
    pcrs.pop("patternProperties")
    pcrs["properties"] = {
        bank: {"type": "object", "propertyNames": {"pattern": index},
               "additionalProperties": {"type": "string", "pattern": f"^[0-9a-fA-F]{{{2 * size}}}$"}}
        for bank, size in BANK_SIZES.items()
    }
    pcrs["additionalProperties"] = False
    pcrs["minProperties"] = 1
    schema["oneOf"] = [
        {"required": ["quote", "signature"], "not": {"required": ["quotes"]}},
        {"required": ["quotes"], "not": {"anyOf": [{"required": ["quote"]}, {"required": ["signature"]}]}},
    ]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://attestd.dev/schemas/evidence.schema.json", **schema}
