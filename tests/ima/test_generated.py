"""Generated lists (attestd.testing.imagen computes expected PCRs with plain hashlib)."""

from __future__ import annotations

import hashlib

import pytest

from attestd.errors import EvidenceError, VerificationError
from attestd.ima import ReplayState, parse
from attestd.testing.imagen import generate

ALL_TEMPLATES = ("ima-ng", "ima-sig", "ima-buf", "ima-modsig", "ima-ngv2", "ima-sigv2", "ima",
                 "d-ng|n-ng|iuid|igid|imode")


@pytest.mark.parametrize("templates", [("ima-ng",), ("ima-sig",), ("ima",), ALL_TEMPLATES])
def test_binary_and_ascii_replay_to_expected(templates):
    g = generate(400, seed=7, templates=templates, violation_rate=0.03, other_pcr_rate=0.05)
    b, a = parse(g.binary), parse(g.ascii)
    assert (b.format, a.format) == ("binary", "ascii")
    assert len(b) == len(a) == 400
    assert b.replay() == a.replay() == g.expected
    assert b.violations == a.violations == tuple(g.violations)
    assert [e.template_name for e in b.entries] == g.template_names
    # the two forms carry the same entries, field by field
    for x, y in zip(b.entries, a.entries):
        assert (x.pcr, x.template_hash, x.template, x.fields, x.template_data) == (
            y.pcr, y.template_hash, y.template, y.fields, y.template_data)
    assert [e.offset for e in b.entries] == g.offsets
    assert [e.offset for e in a.entries] == g.line_offsets


def test_other_banks_and_pcrs():
    g = generate(200, seed=3, templates=ALL_TEMPLATES, violation_rate=0.05, other_pcr_rate=0.2,
                 banks=("sha1", "sha256", "sha384", "sha512"))
    log = parse(g.binary)
    assert log.replay(banks=("sha1", "sha256", "sha384", "sha512")) == g.expected
    assert set(g.expected["sha1"]) == {10, 11}
    assert any("PCR 11" in w for w in log.warnings())
    assert any("violation" in w for w in log.warnings())


def test_violation_extends_ff():
    g = generate(3, seed=1, violation_rate=1.0)
    log = parse(g.binary)
    assert log.violations == (1, 2)
    e = log.entries[1]
    assert e.is_violation and not any(e.template_hash) and e.template_hash_ok
    p1 = hashlib.sha1(bytes(20) + log.entries[0].template_hash).digest()
    p256 = hashlib.sha256(bytes(32) + hashlib.sha256(log.entries[0].template_data).digest()).digest()
    for _ in range(2):
        p1 = hashlib.sha1(p1 + b"\xff" * 20).digest()
        p256 = hashlib.sha256(p256 + b"\xff" * 32).digest()
    assert log.replay() == {"sha1": {10: p1}, "sha256": {10: p256}}


def test_sha1_padded_mode_for_old_kernels():
    g = generate(50, seed=2, violation_rate=0.1)
    log = parse(g.binary)
    p = bytes(32)
    for e in log.entries:
        d = (b"\xff" * 20 if e.is_violation else e.template_hash) + bytes(12)
        p = hashlib.sha256(p + d).digest()
    assert log.replay(sha1_padded=True)["sha256"][10] == p
    assert log.replay(sha1_padded=True)["sha1"] == g.expected["sha1"]
    assert log.matching_prefix(p, bank="sha256", sha1_padded=True) == 50
    assert log.matching_prefix(p, bank="sha256") is None


def test_big_endian_list_is_detected_and_replayed():
    g = generate(60, seed=5, templates=("ima-sig", "ima-buf", "d-ng|n-ng|iuid|imode"), big_endian=True)
    log = parse(g.binary)
    assert log.byte_order == "big"
    assert log.replay() == g.expected
    assert any("big endian" in w for w in log.warnings())
    assert parse(generate(5).binary).byte_order == "little"


@pytest.mark.parametrize("form", ["binary", "ascii"])
def test_tampered_entry_reports_index_and_offset(form):
    g = generate(50, seed=11, templates=("ima-ng", "ima-sig"))
    k = 37
    data = bytearray(getattr(g, form))
    if form == "binary":
        # flip one bit of the file digest inside entry k's template data (not a length field)
        name_len = int.from_bytes(data[g.offsets[k] + 24 : g.offsets[k] + 28], "little")
        pos = g.offsets[k] + 28 + name_len + 4 + 4 + len(b"sha256:\0") + 3
        data[pos] ^= 0x01
        offset = g.offsets[k]
    else:
        line_start = g.line_offsets[k]
        digest_at = data.index(b"sha256:", line_start) + len(b"sha256:")
        data[digest_at] = ord("0") if data[digest_at] != ord("0") else ord("1")
        offset = line_start
    log = parse(bytes(data))  # structure is intact: parsing succeeds
    assert not log.entries[k].template_hash_ok
    for check in (log.verify_template_hashes, log.replay, lambda: log.matching_prefix(g.running_pcr10["sha1"][-1])):
        with pytest.raises(VerificationError) as exc:
            check()
        assert exc.value.code == "ima.template_hash_mismatch"
        assert exc.value.details["index"] == k
        assert exc.value.offset == offset
        assert exc.value.field == f"entries[{k}].template_hash"
    # a prefix that ends before the tampered entry is still fine
    assert log.matching_prefix(g.running_pcr10["sha1"][k - 1]) == k


def test_tampered_template_hash_detected():
    g = generate(10, seed=4)
    data = bytearray(g.binary)
    data[g.offsets[6] + 4] ^= 0x80  # first byte of the logged template hash
    with pytest.raises(VerificationError) as exc:
        parse(bytes(data)).replay()
    assert exc.value.details["index"] == 6 and exc.value.offset == g.offsets[6]


def test_matching_prefix_against_running_values():
    g = generate(300, seed=9, violation_rate=0.02, other_pcr_rate=0.1)
    log = parse(g.binary)
    for k in (0, 1, 57, 150, 299):
        for bank in ("sha1", "sha256"):
            n = log.matching_prefix(g.running_pcr10[bank][k], bank=bank)
            # shortest prefix: entries after k that only touch PCR 11 are not counted
            first = min(j for j in range(k + 1) if g.running_pcr10[bank][j] == g.running_pcr10[bank][k])
            assert n == first + 1
            assert n <= k + 1
    assert log.matching_prefix(bytes(20)) == 0
    assert log.matching_prefix(hashlib.sha1(b"nope").digest()) is None
    assert log.matching_prefix(bytes(32), bank="sha256") == 0
    with pytest.raises(EvidenceError) as exc:
        log.matching_prefix(bytes(20), bank="sha256")
    assert exc.value.code == "ima.replay.pcr_value"


def test_live_host_log_longer_than_quote():
    """The list was read after the quote: the quote covers a prefix; state continues from there."""
    g = generate(1000, seed=12)
    quoted = g.running_pcr10["sha256"][699]
    log = parse(g.binary)
    st = log.match_pcr(quoted, bank="sha256")
    assert st is not None and st.position == 700
    assert st.value("sha1") == g.running_pcr10["sha1"][699]
    # next poll: the agent sends entries 700.. only; the verifier continues from the saved state
    tail = parse(g.binary[g.offsets[700]:], first_index=700)
    assert tail.entries[0].index == 700
    final = tail.replay_state(ReplayState.from_json(st.to_json()))
    assert final.position == 1000 and final.as_dict() == g.expected
    assert tail.matching_prefix(g.running_pcr10["sha1"][899], state=st) == 900


@pytest.mark.parametrize("split", [1, 2, 333, 999])
def test_incremental_equals_whole(split):
    g = generate(1000, seed=13, violation_rate=0.01)
    whole = parse(g.binary)
    head = parse(g.binary[: g.offsets[split]])
    st = head.replay_state()
    assert st.position == split
    assert whole.replay_state(st).as_dict() == g.expected  # the full list, continued from the state
    tail = parse(g.ascii[g.line_offsets[split]:], first_index=split)
    assert tail.replay_state(st).as_dict() == g.expected


def test_state_mismatch_is_reported():
    g = generate(20, seed=1)
    tail = parse(g.binary[g.offsets[10]:], first_index=10)
    with pytest.raises(VerificationError) as exc:
        tail.replay_state(ReplayState.initial())  # position 0, but the chunk starts at 10
    assert exc.value.code == "ima.replay.state_mismatch"
    with pytest.raises(VerificationError):
        parse(g.binary).replay_state(ReplayState(25, {"sha1": {}, "sha256": {}}))


def test_state_json_roundtrip_and_validation():
    st = parse(generate(30, other_pcr_rate=0.3, seed=2).binary).replay_state()
    assert ReplayState.from_json(st.to_json()) == st
    for bad in ({}, {"position": -1, "pcrs": {"sha1": {}}}, {"position": 1, "pcrs": {}},
                {"position": 1, "pcrs": {"sha1": {"10": "00"}}}, {"position": 1, "pcrs": {"md5": {}}},
                {"position": 1, "pcrs": {"sha1": {"x": "00" * 20}}}):
        with pytest.raises(EvidenceError):
            ReplayState.from_json(bad)


def test_entry_fields_ima_buf_and_modsig():
    g = generate(40, seed=21, templates=("ima-buf", "ima-modsig"))
    log = parse(g.ascii)
    bufs = [e for e in log.entries if e.template_name == "ima-buf" and e.buf]
    assert bufs
    for e in bufs:
        assert e.filename == "kexec-cmdline"
        assert e.digest.digest == hashlib.sha256(e.buf).digest()
    mods = [e for e in log.entries if e.template_name == "ima-modsig" and e.modsig]
    assert mods and all(e.modsig_digest is not None and e.modsig_digest.algo == "sha256" for e in mods)
    ng2 = parse(generate(3, templates=("ima-sigv2",)).binary).entries[1]
    assert ng2.digest.digest_type == "ima" and ng2.digest.algo == "sha256"


def test_custom_template_format_name():
    g = generate(20, seed=8, templates=("d-ng|n-ng|iuid|igid|imode",))
    log = parse(g.binary)
    e = log.entries[3]
    assert e.template.field_ids == ("d-ng", "n-ng", "iuid", "igid", "imode")
    assert int.from_bytes(e.field("imode"), "little") in (0o100755, 0o100644)
    assert parse(g.ascii).replay() == log.replay() == g.expected


def test_legacy_ima_template():
    g = generate(30, seed=4, templates=("ima",), violation_rate=0.1)
    log = parse(g.binary)
    e = log.entries[0]
    assert e.template.is_legacy and e.filename == "boot_aggregate" and len(e.template_data) == 20 + 256
    assert e.digest.algo == "sha1"
    assert e.template_hash == hashlib.sha1(e.fields[0] + b"boot_aggregate".ljust(256, b"\0")).digest()
    assert log.replay() == parse(g.ascii).replay() == g.expected
