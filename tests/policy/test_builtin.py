"""Built-in policies: compliant hosts pass, each requirement is enforced, docs list every claim they read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attestd.errors import EvidenceError
from attestd.policy import Claim, builtin

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

LINUX = {
    "aikValidated": True,
    "tpmVersion": 2,
    "secureBootEnabled": True,
    "bootApplications": ["shim", "grub", "kernel"],
    "kernelCommandLine": "BOOT_IMAGE=/vmlinuz ro quiet",
    "kernelDebuggingDisabled": True,
}
WINDOWS = {
    "aikValidated": True,
    "tpmVersion": 2,
    "secureBootEnabled": True,
    "secureBootPk": "Contoso Platform Key",
    "secureBootKek": ["Microsoft Corporation KEK CA 2011"],
    "secureBootDb": ["Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"],
    "bootDebuggingDisabled": True,
    "osKernelDebuggingDisabled": True,
    "hypervisorDebuggingDisabled": True,
    "codeIntegrityEnabled": True,
    "testSigningDisabled": True,
    "flightSigningNotEnabled": True,
    "notSafeMode": True,
    "notWinPE": True,
}
SECURED_CORE = {
    "aikValidated": True,
    "tpmVersion": 2,
    "secureBootEnabled": True,
    "drtmLaunched": True,
    "vbsEnabled": True,
    "hvciEnabled": True,
    "iommuEnabled": True,
}
GOOD = {"linux-secure-boot": LINUX, "windows-host": WINDOWS, "secured-core": SECURED_CORE}


def test_list_and_load():
    assert builtin.list() == ("linux-secure-boot", "secured-core", "windows-host")
    for name in builtin.list():
        p = builtin.load(name)
        assert p.version == "1.2" and p.rule_count > 5
        assert builtin.text(name).startswith(f"// {name}:")
    with pytest.raises(EvidenceError) as e:
        builtin.load("nope")
    assert e.value.code == "policy.unknown_builtin"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_compliant_host_is_permitted(name):
    d = builtin.load(name).evaluate(GOOD[name])
    assert d.permitted, d.explanation
    assert d.issued_claims["attestd-policy"] == name


@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_requirement_is_enforced(name):
    """Removing or falsifying any one claim the policy reads denies, naming the deny() rule."""
    p = builtin.load(name)
    good = GOOD[name]
    assert set(good) == set(p.incoming_claim_types())
    for claim in good:
        without = {k: v for k, v in good.items() if k != claim}
        d = p.evaluate(without)
        assert not d.permitted and d.denied_by is not None, claim
        assert claim in d.denied_by.source, (claim, d.denied_by.source)
        assert "denied by deny()" in d.explanation
        value = good[claim]
        if isinstance(value, bool):
            assert not p.evaluate({**good, claim: not value}).permitted, claim
            assert not p.evaluate({**good, claim: 1}).permitted, claim  # 1 is not true


@pytest.mark.parametrize("name", sorted(GOOD))
def test_attester_supplied_claims_do_not_count(name):
    forged = [Claim(k, v, "CustomClaim") for k, v in GOOD[name].items() if not isinstance(v, list)]
    forged += [Claim(k, x, "CustomClaim") for k, v in GOOD[name].items() if isinstance(v, list) for x in v]
    assert not builtin.load(name).evaluate(forged).permitted


def test_linux_boot_chain_must_be_complete():
    p = builtin.load("linux-secure-boot")
    for missing in ("shim", "grub", "kernel"):
        apps = [a for a in LINUX["bootApplications"] if a != missing]
        d = p.evaluate({**LINUX, "bootApplications": apps})
        assert not d.permitted and f'value=="{missing}"' in d.denied_by.source
    assert p.evaluate({**LINUX, "bootApplications": ["shim", "grub", "kernel", "fwupd"]}).permitted
    assert p.configuration.required_pcrs == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14)


def test_windows_keys():
    p = builtin.load("windows-host")
    assert p.evaluate({**WINDOWS, "secureBootDb": ["Windows UEFI CA 2023"]}).permitted
    assert p.evaluate({**WINDOWS, "secureBootKek": ["Microsoft Corporation KEK 2K CA 2023"]}).permitted
    d = p.evaluate({**WINDOWS, "secureBootDb": ["Microsoft Corporation UEFI CA 2011"]})
    assert not d.permitted and "secureBootDbTrustsWindows" in d.denied_by.source
    d = p.evaluate({**WINDOWS, "secureBootPk": "DO NOT TRUST - AMI Test PK"})
    assert not d.permitted and "AMI Test PK" in d.denied_by.source


def test_docs_list_every_claim_the_builtins_read():
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Built-in policies", 1)[1]
    listed = set(re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.M))
    needed = set().union(*(builtin.load(n).incoming_claim_types() for n in builtin.list()))
    assert needed <= listed, sorted(needed - listed)
