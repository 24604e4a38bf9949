"""Host identity PKI: the tenant CA that certifies TPM-resident keys after attestation."""
