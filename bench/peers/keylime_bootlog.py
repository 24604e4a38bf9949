"""Time Keylime's measured-boot parser (keylime.mba.mba.bootlog_parse) on event logs.

Runs inside the peers virtualenv (bench/.venv-peers, made by bench/setup-peers.sh), never in
Attestd's own environment. Prints one JSON object: {path: {"seconds": median, "pcrs": {bank: {pcr: hex}}}}.
Keylime shells out to tpm2_eventlog and parses its YAML, so its time includes that process.
"""

import base64
import json
import logging
import statistics
import sys
import time

logging.disable(logging.CRITICAL)

from keylime.mba import mba  # noqa: E402

mba.load_imports(skip_custom_policies=True)


def main() -> None:
    runs = int(sys.argv[1])
    out = {}
    for path in sys.argv[2:]:
        b64 = base64.b64encode(open(path, "rb").read()).decode()
        result = {"seconds": None, "pcrs": {}}
        for bank in ("sha256", "sha1"):
            try:
                pcrs, _agg, _log, failure = mba.bootlog_parse(b64, bank)
            except Exception as exc:  # keylime raises on logs it cannot read; record, don't abort
                result["error"] = f"{type(exc).__name__}: {exc.__cause__ or exc}"
                continue
            if pcrs:
                result["pcrs"][bank] = {str(k): "%0*x" % (64 if bank == "sha256" else 40, v) for k, v in pcrs.items()}
        result["failed"] = not result["pcrs"]
        if result["failed"]:
            out[path] = result
            continue
        bank = "sha256" if "sha256" in result["pcrs"] else "sha1"
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            mba.bootlog_parse(b64, bank)
            times.append(time.perf_counter() - t)
        result["seconds"] = statistics.median(times)
        out[path] = result
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
