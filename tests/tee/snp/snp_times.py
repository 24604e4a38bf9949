"""Verification times inside the corpus certificates' validity windows (INDEX.md: pin the clock)."""

from datetime import UTC, datetime

# go-sev-guest vcek.testcer: 2022-09-24 .. 2029-09-24 ("verify at about 2022-09-24").
AT_GO_SEV_GUEST = datetime(2022, 9, 25, tzinfo=UTC)
# trustee test-vcek.der (2023-01-24 ..) and az-snp-vtpm/vcek.pem (2023-05-02 ..).
AT_TRUSTEE = datetime(2024, 6, 1, tzinfo=UTC)
# The VCEKs embedded in evidence-v0/v1/v2 (2025-01-28 ..) and vcek-genoa.pem (2025-01-24 ..).
AT_AZURE_2025 = datetime(2025, 6, 1, tzinfo=UTC)
