"""Baselines of IMA-measured files: a changed digest and a new file are named by path."""

from __future__ import annotations

import hashlib
import struct

import pytest
from corpus_paths import FIXTURES

from attestd.baseline import Baseline, compare, learn
from attestd.eventlog import parse
from attestd.ima import parse as parse_ima
from attestd.testing.imagen import generate

QEMU = FIXTURES / "qemu"
BUSYBOX = "sha256:3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"


def _ima_ng_line(path: str, digest: bytes) -> str:
    """One ascii_runtime_measurements line (ima-ng: d-ng | n-ng), with its real SHA-1 template hash."""
    d = b"sha256:\0" + digest
    n = path.encode() + b"\0"
    template_hash = hashlib.sha1(struct.pack("<I", len(d)) + d + struct.pack("<I", len(n)) + n).hexdigest()
    return f"10 {template_hash} ima-ng sha256:{digest.hex()} {path}"


def _ima(variant: str = "sb", *extra: str, replace: dict[str, bytes] | None = None):
    lines = (QEMU / variant / "ima" / "ascii_runtime_measurements").read_text().splitlines()
    if replace:
        lines = [_ima_ng_line(ln.split()[-1], replace[ln.split()[-1]]) if ln.split()[-1] in replace else ln
                 for ln in lines]
    return parse_ima(("\n".join([*lines, *extra]) + "\n").encode())


@pytest.fixture(scope="module")
def log():
    return parse((QEMU / "sb" / "binary_bios_measurements").read_bytes())


@pytest.fixture(scope="module")
def base(log):
    return learn(log, ima=_ima(), ima_allow_changed=("/var/log/*",))


def test_learned_files_leave_out_boot_aggregate(base):
    assert base.ima.files == {"/init": ("sha256:be41b8914831747041f6dab901ed0500644b3184bd90a8aa3d1c710123a9ea4c",),
                              "/bin/busybox": (BUSYBOX,)}
    # the binary list gives the same baseline as the ASCII one
    binary = parse_ima((QEMU / "sb" / "ima" / "binary_runtime_measurements").read_bytes())
    assert learn(parse((QEMU / "sb" / "binary_bios_measurements").read_bytes()), ima=binary).ima.files == base.ima.files


def test_same_files_match(base, log):
    result = compare(base, log, ima=_ima("sb-second"))
    assert result.matches and result.ima_compared
    # boot_aggregate (a hash of PCRs 0-9) differs for init=/bin/sh; the event log comparison names that
    only_ima = compare(base, log, ima=_ima("sb-initsh"))
    assert only_ima.matches


def test_changed_digest_is_named_by_path(base, log):
    result = compare(base, log, ima=_ima(replace={"/bin/busybox": b"\xab" * 32}))
    (d,) = result.differences
    assert (d.kind, d.path, d.pcr, d.found_index, d.found_type) == ("ima-changed", "/bin/busybox", 10, 2, "ima-ng")
    assert d.expected_digest == BUSYBOX and d.found_digest == "sha256:" + "ab" * 32
    assert d.message == f"IMA entry 2, ima-ng: /bin/busybox changed: expected {BUSYBOX} found sha256:{'ab' * 32}"
    assert d.to_json()["path"] == "/bin/busybox"


def test_new_files_and_their_allowances(base, log):
    ima = _ima("sb", _ima_ng_line("/tmp/dropper", b"\x01" * 32), _ima_ng_line("/var/log/app.log", b"\x02" * 32))
    result = compare(base, log, ima=ima)
    # /var/log/* may vary: a file there may also be new
    assert [(d.kind, d.path) for d in result.differences] == [("ima-new", "/tmp/dropper")]
    assert result.differences[0].message == ("IMA entry 3, ima-ng: /tmp/dropper is not in the baseline "
                                             f"(found sha256:{'01' * 32})")
    doc = base.to_json()
    doc["ima"]["allowChanged"] = ["/var/log/*", "/tmp/*"]
    assert compare(Baseline.from_json(doc), log, ima=ima).matches
    doc["ima"]["allowChanged"] = []
    doc["ima"]["allowNew"] = True
    assert compare(Baseline.from_json(doc), log, ima=ima).matches


def test_allow_changed_globs_only_their_paths(log):
    ima = _ima("sb", _ima_ng_line("/var/log/syslog", b"\x03" * 32), _ima_ng_line("/var/lib/state", b"\x04" * 32))
    base = learn(log, ima=ima, ima_allow_changed=("/var/log/*",))
    later = _ima("sb", _ima_ng_line("/var/log/syslog", b"\x05" * 32), _ima_ng_line("/var/lib/state", b"\x06" * 32))
    assert [(d.kind, d.path) for d in compare(base, log, ima=later).differences] == [("ima-changed", "/var/lib/state")]


def test_generated_lists(log):
    """A larger list from attestd.testing.imagen: one changed file among hundreds is named."""
    good = generate(400, seed=7)
    base = learn(log, ima=parse_ima(good.binary))
    assert len(base.ima.files) > 100
    assert compare(base, log, ima=parse_ima(good.ascii)).matches
    lines = good.ascii.decode().splitlines()
    victim = lines[200].split()[-1]
    lines[200] = _ima_ng_line(victim, b"\xee" * 32)
    result = compare(base, log, ima=parse_ima(("\n".join(lines) + "\n").encode()))
    assert [(d.kind, d.path, d.found_index) for d in result.differences] == [("ima-changed", victim, 200)]


def test_ima_not_compared_without_an_ima_section(log):
    base = learn(log)
    result = compare(base, log, ima=_ima(replace={"/bin/busybox": b"\xab" * 32}))
    assert result.matches and not result.ima_compared
