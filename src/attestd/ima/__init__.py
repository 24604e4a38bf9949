"""IMA (Integrity Measurement Architecture) runtime measurement lists.

* :func:`parse` - binary or ASCII list -> :class:`ImaLog` (structure only; raises EvidenceError).
* :meth:`ImaLog.replay` - bank -> PCR index -> value (SHA-1 bank: logged template hashes; other banks:
  template digests recomputed with the bank's hash; violations extend 0xFF...).
* :class:`ReplayState`, :meth:`ImaLog.replay_state`, :meth:`ImaLog.matching_prefix` - incremental
  replay and "which prefix matches this quoted PCR".
* :func:`verify_signatures` with a :class:`Keyring` - per-entry file signature results.
"""

from attestd.ima.entry import ZERO_TEMPLATE_HASH, FileDigest, ImaEntry
from attestd.ima.log import ImaLog, parse
from attestd.ima.replay import DEFAULT_BANKS, ReplayState, check_template_hashes, match_pcr, replay_entries
from attestd.ima.signatures import (
    EVM_IMA_XATTR_DIGSIG,
    IMA_VERITY_DIGSIG,
    ImaSignature,
    Keyring,
    KeyringKey,
    SignatureResult,
    SignatureStatus,
    keyid_v2,
    parse_signature,
    verify_signature,
    verify_signatures,
)
from attestd.ima.templates import BUILTIN_TEMPLATES, TemplateDescriptor, lookup_template

__all__ = [
    "parse",
    "ImaLog",
    "ImaEntry",
    "FileDigest",
    "ZERO_TEMPLATE_HASH",
    "ReplayState",
    "DEFAULT_BANKS",
    "replay_entries",
    "match_pcr",
    "check_template_hashes",
    "ImaSignature",
    "parse_signature",
    "keyid_v2",
    "Keyring",
    "KeyringKey",
    "SignatureStatus",
    "SignatureResult",
    "verify_signature",
    "verify_signatures",
    "EVM_IMA_XATTR_DIGSIG",
    "IMA_VERITY_DIGSIG",
    "TemplateDescriptor",
    "BUILTIN_TEMPLATES",
    "lookup_template",
]
