"""Verification times inside the corpus files' validity windows (INDEX.md: pin the clock)."""

from datetime import UTC, datetime

# az-snp-vtpm evidence-v0/v1/v2/genoa: VCEKs valid from 2025-01-24/28.
AT_AZ_SNP = datetime(2025, 6, 1, tzinfo=UTC)
# az-snp-vtpm/vcek.pem (2023-05-02 ..) with hcl-report.bin.
AT_AZ_SNP_2024 = datetime(2024, 6, 1, tzinfo=UTC)
# az-tdx-vtpm td-quote.bin: PCK valid 2023-09-13 .. 2030-09-13.
AT_AZ_TDX = datetime(2025, 1, 1, tzinfo=UTC)
# go-sev-guest vcek.testcer.der: 2022-09-24 ..
AT_GSG = datetime(2022, 9, 25, tzinfo=UTC)
# dcap-qvl collateral: valid 2025-06-19 .. 2025-07-19.
AT_QVL = datetime(2025, 7, 1, tzinfo=UTC)
# go-tdx-guest sample collateral (upstream verifies at 2023-07-01T01:00Z).
AT_GTG = datetime(2023, 7, 1, 1, tzinfo=UTC)
# The MAA recording (token iat 2022-05-31T22:47:57Z).
AT_MAA = datetime(2022, 5, 31, 22, 47, 57, tzinfo=UTC)
