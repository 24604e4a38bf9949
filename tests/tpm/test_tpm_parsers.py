"""Property tests for every TPM parser: encode/parse round trips of generated structures; random
bytes, truncations and bit flips raise only EvidenceError; absurd lengths fail without allocating."""

from __future__ import annotations

import json
import struct

import pytest
import tpm_support as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.tpm import (
    TPM_ALG,
    Attest,
    CertifyInfo,
    ClockInfo,
    CommandAuditInfo,
    CreationData,
    CreationInfo,
    ECCParms,
    ECCPoint,
    KeyedHashParms,
    NVCertifyInfo,
    NVDigestCertifyInfo,
    PCRSelection,
    PCRSelectionList,
    Public,
    QuoteInfo,
    RSAParms,
    Scheme,
    SessionAuditInfo,
    Signature,
    SymCipherParms,
    SymDefObject,
    TimeAttestInfo,
    load_signing_key,
    parse_attest,
    parse_creation_data,
    parse_gotpm_attestation,
    parse_pcr_file,
    parse_pcr_selection_list,
    parse_public,
    parse_public_2b,
    parse_public_any,
    parse_signature,
)
from attestd.tpm.gotpm import iter_fields

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HASHES = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]
SIZES = {TPM_ALG.SHA1: 20, TPM_ALG.SHA256: 32, TPM_ALG.SHA384: 48, TPM_ALG.SHA512: 64}

digest = st.binary(max_size=64)
name = st.one_of(st.binary(max_size=0), st.binary(min_size=4, max_size=4),
                 st.sampled_from(HASHES).flatmap(lambda h: st.binary(min_size=SIZES[h], max_size=SIZES[h]).map(
                     lambda d, h=h: struct.pack(">H", h) + d)))
u64, u32, u16 = st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1)
clock = st.builds(ClockInfo, u64, u32, u32, st.booleans())
selection = st.builds(
    PCRSelectionList,
    st.lists(st.builds(PCRSelection, st.sampled_from(HASHES + [0x0012]), st.lists(st.integers(0, 23), max_size=24)
                       .map(tuple), st.just(3)), max_size=4).map(tuple))
attested = st.one_of(
    st.builds(QuoteInfo, selection, digest),
    st.builds(CertifyInfo, name, name),
    st.builds(CreationInfo, name, digest),
    st.builds(TimeAttestInfo, u64, clock, u64),
    st.builds(CommandAuditInfo, u64, st.sampled_from(HASHES), digest, digest),
    st.builds(SessionAuditInfo, st.booleans(), digest),
    st.builds(NVCertifyInfo, name, u16, st.binary(max_size=100)),
    st.builds(NVDigestCertifyInfo, name, digest),
)
_TYPE = {QuoteInfo: 0x8018, CertifyInfo: 0x8017, CreationInfo: 0x801A, TimeAttestInfo: 0x8019,
         CommandAuditInfo: 0x8015, SessionAuditInfo: 0x8016, NVCertifyInfo: 0x8014, NVDigestCertifyInfo: 0x801C}
attest = attested.flatmap(lambda a: st.builds(Attest, u32, st.just(_TYPE[type(a)]), name, st.binary(max_size=66),
                                              clock, u64, st.just(a)))

hash_scheme = st.sampled_from(HASHES)
signature = st.one_of(
    st.builds(lambda a, h, s: Signature(a, h, rsa_sig=s), st.sampled_from([0x14, 0x16]), hash_scheme,
              st.binary(max_size=512)),
    st.builds(lambda a, h, r, s: Signature(a, h, r=r, s=s), st.sampled_from([0x18, 0x1A, 0x1B, 0x1C]), hash_scheme,
              st.binary(max_size=66), st.binary(max_size=66)),
    hash_scheme.flatmap(lambda h: st.binary(min_size=SIZES[h], max_size=SIZES[h]).map(
        lambda d, h=h: Signature(0x05, h, hmac=d))),
    st.just(Signature(0x10, 0x10)),
)
sym = st.one_of(st.just(SymDefObject()), st.builds(SymDefObject, st.sampled_from([0x06, 0x13, 0x26]),
                                                  st.sampled_from([128, 192, 256]), st.sampled_from([0x43, 0x42, 0x10])))
rsa_scheme = st.one_of(st.just(Scheme()), st.just(Scheme(TPM_ALG.RSAES)),
                       st.builds(Scheme, st.sampled_from([0x14, 0x16, 0x17]), hash_scheme))
ecc_scheme = st.one_of(st.just(Scheme()), st.builds(Scheme, st.sampled_from([0x18, 0x19, 0x1B, 0x1C, 0x1D]), hash_scheme),
                       st.builds(lambda h, c: Scheme(0x1A, h, count=c), hash_scheme, u16))
kdf = st.one_of(st.just(Scheme()), st.builds(Scheme, st.sampled_from([0x07, 0x20, 0x21, 0x22]), hash_scheme))
kh_scheme = st.one_of(st.just(Scheme()), st.builds(Scheme, st.just(0x05), hash_scheme),
                      st.builds(lambda h, k: Scheme(0x0A, h, kdf=k), hash_scheme, st.sampled_from([0x07, 0x22, 0x10])))


@st.composite
def public(draw):
    kind = draw(st.sampled_from(["rsa", "ecc", "kh", "sym"]))
    head = dict(name_alg=draw(st.sampled_from(HASHES)), object_attributes=draw(u32), auth_policy=draw(digest))
    if kind == "rsa":
        return Public(TPM_ALG.RSA, parameters=RSAParms(draw(sym), draw(rsa_scheme), draw(u16), draw(u32)),
                      unique=draw(st.binary(max_size=512)), **head)
    if kind == "ecc":
        return Public(TPM_ALG.ECC, parameters=ECCParms(draw(sym), draw(ecc_scheme), draw(u16), draw(kdf)),
                      unique=ECCPoint(draw(st.binary(max_size=66)), draw(st.binary(max_size=66))), **head)
    if kind == "kh":
        return Public(TPM_ALG.KEYEDHASH, parameters=KeyedHashParms(draw(kh_scheme)), unique=draw(digest), **head)
    return Public(TPM_ALG.SYMCIPHER, parameters=SymCipherParms(draw(sym)), unique=draw(digest), **head)


creation = st.builds(CreationData, selection, digest, st.integers(0, 255), st.sampled_from(HASHES), name, name,
                     st.binary(max_size=66))


def only_evidence_errors(fn, data):
    try:
        return fn(data)
    except EvidenceError:
        return None


def _damage(data: bytes, draw) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if out:
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


# -- round trips ------------------------------------------------------------------------------

@SETTINGS
@given(attest)
def test_attest_round_trip(a):
    data = a.to_bytes()
    assert parse_attest(data) == a
    assert parse_attest(data).to_bytes() == data
    json.dumps(a.to_json())


@SETTINGS
@given(signature)
def test_signature_round_trip(s):
    assert parse_signature(s.to_bytes()) == s
    json.dumps(s.to_json())


@SETTINGS
@given(public())
def test_public_round_trip(p):
    data = p.to_bytes()
    assert parse_public(data) == p
    assert parse_public_2b(p.to_tpm2b()) == p
    assert parse_public_any(data) == p and parse_public_any(p.to_tpm2b()) == p
    assert p.name == struct.pack(">H", p.name_alg) + ts.name(data, {4: "sha1", 11: "sha256", 12: "sha384",
                                                                   13: "sha512"}[p.name_alg])[2:]
    json.dumps(p.to_json())


@SETTINGS
@given(selection)
def test_selection_round_trip(s):
    assert parse_pcr_selection_list(s.to_bytes()) == s


@SETTINGS
@given(creation)
def test_creation_data_round_trip(c):
    assert parse_creation_data(c.to_bytes()) == c
    assert parse_creation_data(struct.pack(">H", len(c.to_bytes())) + c.to_bytes()) == c


# -- hostile input ---------------------------------------------------------------------------

PARSERS = [parse_attest, parse_signature, parse_public, parse_public_2b, parse_public_any, parse_pcr_selection_list,
           parse_creation_data, parse_gotpm_attestation, parse_pcr_file, load_signing_key]


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from(PARSERS))
def test_random_bytes_only_raise_evidence_errors(data, parser):
    only_evidence_errors(parser, data)


@SETTINGS
@given(st.data())
def test_truncation_and_bit_flips(data):
    which = data.draw(st.sampled_from(["attest", "signature", "public", "public2b", "creation", "selection"]))
    value = data.draw({"attest": attest, "signature": signature, "public": public(), "public2b": public(),
                       "creation": creation, "selection": selection}[which])
    parser = {"attest": parse_attest, "signature": parse_signature, "public": parse_public,
              "public2b": parse_public_2b, "creation": parse_creation_data,
              "selection": parse_pcr_selection_list}[which]
    raw = value.to_tpm2b() if which == "public2b" else value.to_bytes()
    cut = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    if which != "creation":  # a creation-data prefix may read as a TPM2B wrapper; still only EvidenceError
        with pytest.raises(EvidenceError):
            parser(raw[:cut])
    else:
        only_evidence_errors(parser, raw[:cut])
    with pytest.raises(EvidenceError):
        parser(raw + b"\x00")
    only_evidence_errors(parser, _damage(raw, data.draw))


def test_absurd_lengths_fail_fast():
    big = b"\xff\xff"
    cases = [
        (parse_attest, struct.pack(">IH", 0xFF544347, 0x8018) + big),  # qualifiedSigner size 65535
        (parse_attest, ts.attest(struct.pack(">I", 0xFFFFFFFF))),  # TPML count 2^32-1
        (parse_attest, ts.attest(struct.pack(">IHB", 1, 0x000B, 255))),  # sizeofSelect 255
        (parse_signature, struct.pack(">HH", 0x14, 0x0B) + big),
        (parse_public_2b, big + b"\x00" * 10),
        (parse_public, struct.pack(">HHI", 1, 0x0B, 0) + big),
    ]
    for parser, data in cases:
        with pytest.raises(EvidenceError) as e:
            parser(data)
        assert e.value.code in ("tpm.length", "tpm.truncated")
        assert e.value.offset is not None
    # protobuf: a length of 2^63 and a never-ending varint
    for data in (b"\x0a" + b"\xff" * 8 + b"\x7f", b"\x0a" + b"\xff" * 20, b"\x12\x05\x0a\xff\xff\xff\x7f"):
        with pytest.raises(EvidenceError) as e:
            parse_gotpm_attestation(data)
        assert e.value.code in ("gotpm.truncated", "gotpm.varint")


def test_error_names_field_and_offset():
    good = ts.attest(ts.quote_info({"sha256": [0]}, {"sha256": {0: bytes(32)}}, "sha256"))
    with pytest.raises(EvidenceError) as e:
        parse_attest(good[:-5])
    assert e.value.code == "tpm.truncated"
    assert e.value.field == "TPMS_QUOTE_INFO.pcrDigest"
    assert e.value.offset == len(good) - 32
    with pytest.raises(EvidenceError) as e:
        parse_attest(good[:4] + b"\x80\x99" + good[6:])
    assert (e.value.code, e.value.offset) == ("tpm.attest_type", 4)
    with pytest.raises(EvidenceError) as e:
        parse_signature(b"\x00\x14\x00\x99")
    assert (e.value.code, e.value.field, e.value.offset) == ("tpm.unsupported_alg", "TPMT_SIGNATURE.signature.hash", 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.sampled_from([0, 1, 2, 5]), st.binary(max_size=20)), max_size=8))
def test_protobuf_reader_round_trip(records):
    """Records written by a minimal independent encoder read back exactly."""
    def varint(v):
        out = b""
        while True:
            out += bytes([(v & 0x7F) | (0x80 if v > 0x7F else 0)])
            v >>= 7
            if not v:
                return out
    blob, expected = b"", []
    for number, wire, payload in records:
        key = varint(number << 3 | wire)
        if wire == 0:
            v = int.from_bytes(payload[:8] or b"\x00", "little")
            blob += key + varint(v)
            expected.append((number, wire, v))
        elif wire == 1:
            v = int.from_bytes(payload[:8].ljust(8, b"\x00"), "little")
            blob += key + v.to_bytes(8, "little")
            expected.append((number, wire, v))
        elif wire == 5:
            v = int.from_bytes(payload[:4].ljust(4, b"\x00"), "little")
            blob += key + v.to_bytes(4, "little")
            expected.append((number, wire, v))
        else:
            blob += key + varint(len(payload)) + payload
            expected.append((number, wire, payload))
    got = [(n, w, blob[v[0]:v[1]] if w == 2 else v) for n, w, v, _ in iter_fields(blob)]
    assert got == expected


def test_pcr_file_formats():
    yaml_out = ("  sha1:\n    0 : 0x" + "00" * 20 + "\n  sha256:\n    0 : 0x" + "AB" * 32
                + "\n    16: 0x" + "01" * 32 + "\n")
    assert parse_pcr_file(yaml_out) == {"sha1": {0: bytes(20)}, "sha256": {0: b"\xab" * 32, 16: b"\x01" * 32}}
    quote_out = ("quoted: ff54\nsignature:\n  alg: rsassa\n  sig: 00\npcrs:\n  sha256:\n    7 : 0x" + "02" * 32
                 + "\ncalcDigest: 1234\n")
    assert parse_pcr_file(quote_out.encode()) == {"sha256": {7: b"\x02" * 32}}
    for bad in ("", "nothing: here\n", "{not json", '{"x": 1}', "  sha256:\n    0 : 0x00\n", b"\xff\xfe"):
        with pytest.raises(EvidenceError) as e:
            parse_pcr_file(bad)
        assert e.value.code == "quote.pcrs_invalid"


@pytest.mark.corpus
def test_gotpm_corpus_damage(corpus):
    blob = (corpus / "go-tpm-tools" / "gce-cos-85-nonce9009.pb").read_bytes()
    att = parse_gotpm_attestation(blob)
    assert len(att.quotes) == 3 and att.ak_cert and len(att.event_log) > 10000

    @settings(max_examples=120, deadline=None)
    @given(st.data())
    def damaged(data):
        cut = data.draw(st.integers(0, len(blob)))
        only_evidence_errors(parse_gotpm_attestation, _damage(blob[:cut], data.draw))

    damaged()
