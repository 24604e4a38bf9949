"""Attestd: a self-hosted remote attestation service.

Flow, in one direction: parse (:mod:`attestd.tpm`, :mod:`attestd.eventlog`, :mod:`attestd.ima`)
-> verify -> claims -> policy -> token/decision. Parsers are pure and never trust their input;
errors are typed (:mod:`attestd.errors`).
"""

__version__ = "0.1.0"
