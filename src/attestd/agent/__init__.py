"""The host agent: its TPM operations (:mod:`attestd.agent.tpm`, tpm2-pytss) for enrollment,
attestation, identity keys and sealed secrets."""
