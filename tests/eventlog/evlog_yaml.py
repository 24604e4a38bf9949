"""Read ``tpm2_eventlog`` YAML output (upstream fixtures or a live run) and compare it with a parse."""

from __future__ import annotations

from pathlib import Path

import yaml


def _yaml_plain(node):
    """A yaml node as plain data; mappings keep duplicate keys as a list of pairs."""
    if isinstance(node, yaml.MappingNode):
        return [(k.value, _yaml_plain(v)) for k, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_plain(v) for v in node.value]
    return node.value


def load_tpm2_eventlog_yaml(path_or_text: Path | str):
    """(events, pcrs) from tpm2_eventlog's YAML; the SHA1-format output repeats keys, so no safe_load."""
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    top = dict(_yaml_plain(yaml.compose(text)))
    raw_events = top.get("events") or []
    events: list[dict] = []
    if raw_events and isinstance(raw_events[0], tuple):  # one mapping with repeated keys (SHA1 format)
        for key, value in raw_events:
            if key == "PCRIndex":
                events.append({})
            events[-1][key] = value
    else:
        events = [dict(e) for e in raw_events]
    pcrs: dict[str, dict[int, bytes]] = {}
    for bank, values in top.get("pcrs") or []:
        size = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}[bank]
        pcrs[bank] = {int(i): int(v, 16).to_bytes(size, "big") for i, v in values}
    return events, pcrs


def compare_with_tpm2_eventlog(log, events, pcrs, *, replayed=None):
    """Assert that ``log`` has the events and replayed PCRs (default ``log.replay()``) tpm2_eventlog printed."""
    assert len(events) == len(log.events)
    for ours, theirs in zip(log.events, events):
        if "EventNum" in theirs:
            assert int(theirs["EventNum"]) == ours.index
        assert int(theirs["PCRIndex"]) == ours.pcr
        assert theirs["EventType"] == ours.type_name
        assert int(theirs["EventSize"]) == len(ours.data)
        if "Digests" in theirs:
            digests = [dict(d) for d in theirs["Digests"]]
            assert int(theirs["DigestCount"]) == len(digests)
            assert {d["AlgorithmId"]: d["Digest"] for d in digests} == {b: v.hex() for b, v in ours.digests.items()}
        else:
            assert theirs["Digest"] == ours.digests["sha1"].hex()
    assert (log.replay() if replayed is None else replayed) == pcrs
