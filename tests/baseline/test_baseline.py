"""Baselines learned from the project's QEMU boots: match, and differences named by event."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct

import pytest
from corpus_paths import FIXTURES

from attestd.baseline import Allowances, Baseline, compare, learn
from attestd.errors import EvidenceError
from attestd.eventlog import EventLog, parse

QEMU = FIXTURES / "qemu"
CMDLINE = "/vmlinuz console=ttyS0 rootfstype=ramfs ima_policy=tcb ima_template=ima-ng ima_hash=sha256 panic=-1"


def _log(variant: str) -> EventLog:
    return parse((QEMU / variant / "binary_bios_measurements").read_bytes())


@pytest.fixture(scope="module")
def sb() -> EventLog:
    return _log("sb")


@pytest.fixture(scope="module")
def baseline(sb):
    return learn(sb, name="sb")


# -- rebuilding a log with edited events (TCG_PCR_EVENT2, TCG PFP 1.05 section 10.2.2) ----------
def _record(log: EventLog, pcr: int, etype: int, data: bytes, digests: dict[str, bytes] | None = None) -> bytes:
    alg = {a.bank: a.algorithm_id for a in log.spec_id.digest_sizes}
    if digests is None:
        digests = {bank: hashlib.new(bank, data).digest() for bank in ("sha1", "sha256")}
    body = struct.pack("<III", pcr, etype, len(digests))
    for bank, d in digests.items():
        body += struct.pack("<H", alg[bank]) + d
    return body + struct.pack("<I", len(data)) + data


def _edited(log: EventLog, edit) -> EventLog:
    """The log with ``edit(event) -> list of record bytes`` applied to every event after the Spec ID."""
    first = log.events[1].offset
    out = bytearray(log.raw[:first])
    for e in log.events[1:]:
        replaced = edit(e)
        if replaced is None:
            out += log.raw[e.offset:e.offset + e.size]
        else:
            out += b"".join(replaced)
    return parse(bytes(out))


# -- the default: nothing may differ, and a second boot of the same image needs nothing -------------
def test_two_boots_of_one_image_are_identical_event_by_event(sb):
    """What varies between two boots of the same image (the reason the default allowances are empty)."""
    second = _log("sb-second")
    assert len(second.events) == len(sb.events) == 49
    for a, b in zip(sb.events, second.events):
        assert (a.pcr, a.event_type, dict(a.digests), a.data) == (b.pcr, b.event_type, dict(b.digests), b.data)


def test_second_boot_matches_with_no_allowances(baseline):
    assert baseline.allowances == Allowances()
    assert baseline.to_json()["allowances"] == {"ignorePcrs": [], "anyDigest": []}
    result = compare(baseline, _log("sb-second"))
    assert result.matches and result.differences == ()
    assert result.compared_pcrs == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14)
    assert set(result.banks.values()) == {"sha256"}
    assert sum(len(v) for v in baseline.pcrs.values()) == 48  # 49 events less the Spec ID EV_NO_ACTION


def test_image_load_address_needs_no_allowance(sb, baseline):
    """ImageLocationInMemory (UEFI_IMAGE_LOAD_EVENT, PFP 10.2.3) is logged but not hashed."""
    def move(e):
        if e.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION":
            data = bytearray(e.data)
            data[0:8] = struct.pack("<Q", 0x12345000)
            return [_record(sb, e.pcr, e.event_type, bytes(data), dict(e.digests))]
        return None
    moved = _edited(sb, move)
    images = [e.decode().summary() for e in moved.events if e.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION"]
    assert len(images) == 4 and all("[0x12345000+" in s for s in images)
    assert compare(baseline, moved).matches


# -- init=/bin/sh: PCR 8, the GRUB command and the kernel command line ------------------------------
def test_init_sh_is_named_as_the_pcr8_grub_command(baseline):
    result = compare(baseline, _log("sb-initsh"))
    assert not result.matches
    assert {(d.pcr, d.kind) for d in result.differences} == {(8, "changed"), (9, "changed")}

    linux = next(d for d in result.differences if d.found_summary and d.found_summary.startswith("grub_cmd: linux "))
    assert (linux.pcr, linux.expected_index, linux.found_index) == (8, 40, 40)
    assert linux.expected_type == linux.found_type == "EV_IPL"
    assert linux.expected_summary == "grub_cmd: linux " + CMDLINE
    assert linux.found_summary == "grub_cmd: linux " + CMDLINE + " init=/bin/sh"
    assert linux.added == ("init=/bin/sh",) and linux.removed == ()
    assert linux.message == (f'PCR 8, event 40, EV_IPL: GRUB command changed: expected "linux {CMDLINE}" '
                             f'found "linux {CMDLINE} init=/bin/sh" (added init=/bin/sh)')

    cmdline = next(d for d in result.differences if d.expected_summary.startswith("kernel_cmdline: "))
    assert cmdline.message == (f'PCR 8, event 44, EV_IPL: kernel command line changed: expected "{CMDLINE}" '
                               f'found "{CMDLINE} init=/bin/sh" (added init=/bin/sh)')
    # GRUB measures grub.cfg's bytes into PCR 9
    cfg = next(d for d in result.differences if d.pcr == 9)
    assert cfg.expected_summary == cfg.found_summary == "(hd0,gpt1)/EFI/debian/grub.cfg"
    assert cfg.message.startswith('PCR 9, event 35, EV_IPL: "(hd0,gpt1)/EFI/debian/grub.cfg" has other content (sha256 ')


# -- Secure Boot off: PCR 7, decoded -------------------------------------------------------------
def test_secure_boot_off_is_named_in_pcr7(baseline):
    result = compare(baseline, _log("nosb"))
    sb = next(d for d in result.differences if d.pcr == 7 and d.expected_summary.startswith("SecureBoot"))
    assert sb.kind == "changed" and (sb.expected_index, sb.found_index) == (4, 4)
    assert sb.expected_summary == "SecureBoot = 1 (enabled)" and sb.found_summary == "SecureBoot = 0 (disabled)"
    assert sb.message == ('PCR 7, event 4, EV_EFI_VARIABLE_DRIVER_CONFIG: SecureBoot changed: '
                          'expected "1 (enabled)" found "0 (disabled)"')
    assert result.differences[4] is sb  # after PCR 0's two firmware volumes and PCR 4's two kernel loads
    # without Secure Boot shim does not verify the kernel: its two PCR 4 loads are missing
    missing = [d for d in result.differences if d.kind == "missing"]
    assert [(d.pcr, d.expected_index) for d in missing] == [(4, 42), (4, 43), (7, 22), (7, 29)]
    assert missing[2].message == ('PCR 7, event 22 of the baseline, EV_EFI_VARIABLE_AUTHORITY: missing: '
                                  'expected "db: Microsoft Corporation UEFI CA 2011 (owner Microsoft)"')
    assert {d.pcr for d in result.differences} == {0, 4, 7, 8, 9}


# -- alignment ----------------------------------------------------------------------------------
def test_one_inserted_event_is_one_extra(sb, baseline):
    def insert(e):
        if e.index == 37:  # after grub_cmd: set default=0
            return [sb.raw[e.offset:e.offset + e.size], _record(sb, 8, e.event_type, b"grub_cmd: set debug=all\0")]
        return None
    result = compare(baseline, _edited(sb, insert))
    assert [(d.kind, d.pcr, d.found_index) for d in result.differences] == [("extra", 8, 38)]
    assert result.differences[0].message == 'PCR 8, event 38, EV_IPL: not in the baseline: "grub_cmd: set debug=all"'


def test_one_removed_event_is_one_missing(sb, baseline):
    result = compare(baseline, _edited(sb, lambda e: [] if e.index == 36 else None))
    assert [(d.kind, d.pcr, d.expected_index) for d in result.differences] == [("missing", 8, 36)]
    assert result.differences[0].message == ('PCR 8, event 36 of the baseline, EV_IPL: missing: '
                                             'expected "grub_cmd: set timeout=0"')


def test_a_replaced_image_is_changed(sb, baseline):
    def swap(e):
        if e.index == 30:  # GRUB
            return [_record(sb, 4, e.event_type, e.data, {b: bytes(len(d)) for b, d in e.digests.items()})]
        return None
    (d,) = compare(baseline, _edited(sb, swap)).differences
    assert (d.kind, d.pcr, d.expected_index, d.found_index) == ("changed", 4, 30, 30)
    assert "has other content (sha256 a68f6d71ebdd" in d.message and "0000000000000000… found" in d.message


# -- allowances ---------------------------------------------------------------------------------
def test_edited_allowance_ignoring_pcrs_8_and_9_turns_init_sh_into_a_match(baseline):
    doc = json.loads(json.dumps(baseline.to_json()))
    doc["allowances"]["ignorePcrs"] = [8]
    left = compare(Baseline.from_json(doc), _log("sb-initsh"))
    assert [d.pcr for d in left.differences] == [9]  # grub.cfg's bytes changed too
    doc["allowances"]["ignorePcrs"] = [8, 9]
    result = compare(Baseline.from_json(doc), _log("sb-initsh"))
    assert result.matches and 8 not in result.compared_pcrs


def test_any_digest_rules_for_grub_events(baseline):
    doc = json.loads(json.dumps(baseline.to_json()))
    doc["allowances"]["anyDigest"] = [{"pcr": 8, "type": "EV_IPL", "meaning": "kernel_cmdline: *"}]
    left = compare(Baseline.from_json(doc), _log("sb-initsh")).differences
    assert left and all("kernel command line" not in d.message for d in left)
    doc["allowances"]["anyDigest"] += [{"pcr": 8, "type": "EV_IPL", "meaning": "grub_cmd: *"},
                                      {"pcr": 9, "type": "EV_IPL", "meaning": "(hd0,gpt1)/EFI/debian/grub.cfg"}]
    assert compare(Baseline.from_json(doc), _log("sb-initsh")).matches
    # any digest is not "any number": an extra GRUB command is still named
    sb = _log("sb")

    def extra(e):
        if e.index == 37:
            return [sb.raw[e.offset:e.offset + e.size], _record(sb, 8, e.event_type, b"grub_cmd: x\0")]
        return None
    assert [d.kind for d in compare(Baseline.from_json(doc), _edited(sb, extra)).differences] == ["extra"]


def _boot_order(sb: EventLog, order: bytes, drop: str | None = None) -> EventLog:
    def edit(e):
        if e.pcr == 1 and e.type_name == "EV_EFI_VARIABLE_BOOT":
            name = e.decode().name
            if name == "BootOrder":
                return [_record(sb, 1, e.event_type, e.data[:-len(order)] + order)]
            if name == drop:
                return []
        return None
    return _edited(sb, edit)


def test_boot_order_preset(sb, baseline):
    reordered = _boot_order(sb, struct.pack("<3H", 0, 1, 2))
    (d,) = compare(baseline, reordered).differences
    assert d.message == ('PCR 1, event 10, EV_EFI_VARIABLE_BOOT: BootOrder changed: '
                         'expected "0001,0000,0002" found "0000,0001,0002"')
    allowed = learn(sb, allowances=Allowances.preset("boot-order"))
    assert compare(allowed, reordered).matches
    # the boot options themselves must still match
    dropped = _boot_order(sb, struct.pack("<2H", 1, 0), drop="Boot0002")
    assert [d.kind for d in compare(allowed, dropped).differences] == ["missing"]
    assert compare(learn(sb, allowances=Allowances.preset("boot-options")), dropped).matches


def test_presets_are_not_defaults_and_unknown_presets_are_refused(sb):
    assert learn(sb).to_json()["allowances"] == {"ignorePcrs": [], "anyDigest": []}
    rules = Allowances.preset("boot-options", "gpt").to_json()["anyDigest"]
    assert {"pcr": 5, "type": "EV_EFI_GPT_EVENT*", "meaning": "*"} in rules and len(rules) == 3
    with pytest.raises(EvidenceError) as info:
        Allowances.preset("everything")
    assert info.value.code == "baseline.invalid"


def test_pcrs_only_in_the_log_are_compared(sb):
    learned = learn(sb)
    base = dataclasses.replace(learned, pcrs={p: v for p, v in learned.pcrs.items() if p != 14})
    result = compare(base, sb)
    assert [(d.kind, d.pcr) for d in result.differences] == [("extra", 14)] * 3
    assert result.differences[0].message == 'PCR 14, event 25, EV_IPL: not in the baseline: "MokList"'
