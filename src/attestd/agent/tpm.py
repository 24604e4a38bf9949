"""The host side of attestation: the agent's TPM operations through tpm2-pytss (ESAPI).

``AgentTPM(tcti)`` opens the TPM - ``device:/dev/tpmrm0`` by default, any TCTI string by option
(``swtpm:host=127.0.0.1,port=2321`` in tests) - and offers exactly what the protocol needs:

* :meth:`ek`: the Endorsement Key, created from the TCG default template (EK Credential Profile
  2.5, B.3.3 template L-1 RSA 2048 / B.3.4 L-2 ECC P-256; the ``tpm2_pytss.utils`` templates, with
  the manufacturer's template/nonce NV indices honoured), and :meth:`ek_certificate` from NV
  (0x01C00002 / 0x01C0000A);
* :meth:`ak`: a restricted signing Attestation Key (RSA 2048 RSASSA-SHA256 or ECC P-256
  ECDSA-SHA256; fixedTPM, fixedParent, sensitiveDataOrigin), a primary key of the endorsement
  hierarchy (as go-tpm-tools' AK templates), made persistent at a configurable handle;
* :meth:`quote` and :meth:`read_pcrs`;
* :meth:`activate_credential`: TPM2_ActivateCredential with the EK authorised by PolicySecret(
  endorsement) (TCG EK Credential Profile, B.6), proving to the server that the AK lives in the TPM
  that holds the EK;
* :meth:`identity_key` and :meth:`certify`: a TPM-resident signing key for the host's identity
  certificate, certified by the AK over the server's nonce (TPM2_Certify); the private key never
  leaves the TPM, and :meth:`sign` signs with it.

The agent never keeps secrets outside the TPM: keys are TPM objects (persistent handles), and what
the server sends back (credentials, sealed data) is opened only inside the TPM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attestd.errors import AttestdError

__all__ = ["AK_HANDLE", "DEFAULT_TCTI", "IDENTITY_HANDLE", "AgentTPM", "TPMError"]

DEFAULT_TCTI = "device:/dev/tpmrm0"
#: persistent handles (TCG TPM v2.0 Provisioning Guidance 1.0, 7.8: RSA EK 0x81010001, ECC EK
#: 0x81010002; 0x8101xxxx is the endorsement range)
EK_HANDLES = {"rsa": 0x81010001, "ecc": 0x81010002}
AK_HANDLE = 0x81010003
IDENTITY_HANDLE = 0x81000100
SRK_HANDLE = 0x81000001


class TPMError(AttestdError):
    """A TPM command failed (the TSS response code is in ``details``)."""

    def __init__(self, code: str, message: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)


@dataclass(frozen=True)
class KeyInfo:
    """A TPM key the agent uses: its ESYS handle, ``TPM2B_PUBLIC`` bytes and Name."""

    handle: Any
    public: bytes
    name: bytes
    alg: str


def _tss():
    import os

    # the TSS logs expected misses (an absent NV index) as errors on stderr; errors reach us as exceptions
    os.environ.setdefault("TSS2_LOG", "all+none")
    import tpm2_pytss
    import tpm2_pytss.utils

    return tpm2_pytss


def _wrap(operation: str):
    def decorate(fn):
        def inner(self, *args, **kwargs):
            tss = _tss()
            try:
                return fn(self, *args, **kwargs)
            except tss.TSS2_Exception as exc:
                raise TPMError("tpm.command_failed", f"{operation}: {exc}",
                               details={"rc": int(getattr(exc, "rc", 0) or 0)}) from None

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner

    return decorate


def _ak_template(alg: str):
    t = _tss()
    attrs = (t.TPMA_OBJECT.FIXEDTPM | t.TPMA_OBJECT.FIXEDPARENT | t.TPMA_OBJECT.SENSITIVEDATAORIGIN
             | t.TPMA_OBJECT.USERWITHAUTH | t.TPMA_OBJECT.RESTRICTED | t.TPMA_OBJECT.SIGN_ENCRYPT)
    if alg == "rsa":
        spec, scheme = "rsa2048", "rsassa-sha256"
    elif alg == "ecc":
        spec, scheme = "ecc256", "ecdsa-sha256"
    else:
        raise TPMError("tpm.algorithm", f"AK algorithm is rsa or ecc, not {alg!r}")
    return t.TPM2B_PUBLIC.parse(f"{spec}:{scheme}:null", objectAttributes=attrs, nameAlg="sha256")


def _signing_template(alg: str):
    t = _tss()
    attrs = (t.TPMA_OBJECT.FIXEDTPM | t.TPMA_OBJECT.FIXEDPARENT | t.TPMA_OBJECT.SENSITIVEDATAORIGIN
             | t.TPMA_OBJECT.USERWITHAUTH | t.TPMA_OBJECT.SIGN_ENCRYPT)
    spec = {"ecc": "ecc256:ecdsa-sha256", "rsa": "rsa2048:rsassa-sha256"}.get(alg)
    if spec is None:
        raise TPMError("tpm.algorithm", f"key algorithm is rsa or ecc, not {alg!r}")
    return t.TPM2B_PUBLIC.parse(spec, objectAttributes=attrs, nameAlg="sha256")


class AgentTPM:
    """One open TPM (see the module docstring). Use as a context manager."""

    def __init__(self, tcti: str = DEFAULT_TCTI) -> None:
        t = _tss()
        name, _, conf = tcti.partition(":")
        try:
            self.esapi = t.ESAPI(t.TCTILdr(name, conf or None))
        except t.TSS2_Exception as exc:
            raise TPMError("tpm.unavailable", f"cannot open the TPM at {tcti!r}: {exc}", field="tcti") from None
        self.tcti = tcti
        self._eks: dict[str, KeyInfo] = {}

    def __enter__(self) -> AgentTPM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.esapi.close()

    # -- keys ----------------------------------------------------------------------------------
    def _info(self, handle: Any, alg: str) -> KeyInfo:
        pub, name, _ = self.esapi.read_public(handle)
        return KeyInfo(handle, pub.marshal(), name.marshal()[2:], alg)

    @_wrap("create EK")
    def ek(self, alg: str = "ecc") -> KeyInfo:
        """The EK (TCG default template) at its persistent handle, created there on first use."""
        t = _tss()
        if alg in self._eks:
            return self._eks[alg]
        ektype = {"rsa": "EK-RSA2048", "ecc": "EK-ECC256"}.get(alg)
        if ektype is None:
            raise TPMError("tpm.algorithm", f"EK algorithm is rsa or ecc, not {alg!r}")
        _, template = t.utils.create_ek_template(ektype, t.utils.NVReadEK(self.esapi))
        info = self._persistent_primary(EK_HANDLES[alg], template, t.ESYS_TR.ENDORSEMENT, alg)
        self._eks[alg] = info
        return info

    @_wrap("read the EK certificate")
    def ek_certificate(self, alg: str = "ecc") -> bytes | None:
        """The EK certificate from NV (as stored: may carry padding), or None when there is none."""
        from attestd.tpm.ekcert import EK_CERT_NV_ECC, EK_CERT_NV_RSA

        t = _tss()
        index = EK_CERT_NV_ECC if alg == "ecc" else EK_CERT_NV_RSA
        reader = t.utils.NVReadEK(self.esapi)
        try:
            return bytes(reader(index))
        except t.utils.NoSuchIndex:
            return None

    def _persistent(self, handle: int) -> Any | None:
        t = _tss()
        more = True
        start = t.TPM2_HC.PERSISTENT_FIRST if hasattr(t, "TPM2_HC") else 0x81000000
        handles: list[int] = []
        while more:
            more, data = self.esapi.get_capability(t.TPM2_CAP.HANDLES, start, 64)
            found = list(data.data.handles)
            handles += [int(h) for h in found]
            if not found:
                break
            start = int(found[-1]) + 1
        if handle not in handles:
            return None
        return self.esapi.tr_from_tpmpublic(handle)

    def _persistent_primary(self, handle: int, template: Any, hierarchy: Any, alg: str) -> KeyInfo:
        """The key at persistent ``handle``, or a primary key from ``template`` made persistent there."""
        t = _tss()
        existing = self._persistent(handle)
        if existing is None:
            transient, *_ = self.esapi.create_primary(t.TPM2B_SENSITIVE_CREATE(), template, hierarchy)
            existing = self.esapi.evict_control(t.ESYS_TR.OWNER, transient, handle)
            self.esapi.flush_context(transient)
        return self._info(existing, alg)

    @_wrap("create the AK")
    def ak(self, alg: str = "ecc", *, handle: int = AK_HANDLE) -> KeyInfo:
        """The persistent AK at ``handle``, created (and made persistent) on first use."""
        return self._persistent_primary(handle, _ak_template(alg), _tss().ESYS_TR.ENDORSEMENT, alg)

    @_wrap("create the identity key")
    def identity_key(self, alg: str = "ecc", *, handle: int = IDENTITY_HANDLE) -> KeyInfo:
        """A persistent, non-restricted signing key for the host identity certificate (created once)."""
        return self._persistent_primary(handle, _signing_template(alg), _tss().ESYS_TR.OWNER, alg)

    @_wrap("evict")
    def evict(self, handle: int) -> bool:
        t = _tss()
        existing = self._persistent(handle)
        if existing is None:
            return False
        self.esapi.evict_control(t.ESYS_TR.OWNER, existing, handle)
        return True

    # -- attestation ---------------------------------------------------------------------------
    @_wrap("quote")
    def quote(self, ak: KeyInfo, nonce: bytes, selection: str = "sha256:0,1,2,3,4,5,6,7,8,9,14") -> tuple[bytes, bytes]:
        """TPM2_Quote: ``(TPMS_ATTEST, TPMT_SIGNATURE)`` over ``selection`` with ``nonce`` as extraData."""
        t = _tss()
        quoted, sig = self.esapi.quote(ak.handle, t.TPML_PCR_SELECTION.parse(selection), nonce,
                                       t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL))
        return quoted.marshal()[2:], sig.marshal()

    @_wrap("read PCRs")
    def read_pcrs(self, selection: str = "sha256:0,1,2,3,4,5,6,7,8,9,14") -> dict[str, dict[int, bytes]]:
        """``{bank: {pcr: value}}`` (several reads when the TPM returns fewer than asked)."""
        t = _tss()
        wanted: dict[str, list[int]] = {}
        for part in selection.split("+"):
            bank, _, pcrs = part.partition(":")
            wanted[bank] = [int(p) for p in pcrs.split(",") if p]
        out: dict[str, dict[int, bytes]] = {}
        for bank, pcrs in wanted.items():
            remaining = list(pcrs)
            while remaining:
                sel = t.TPML_PCR_SELECTION.parse(f"{bank}:{','.join(map(str, remaining))}")
                _, got_sel, values = self.esapi.pcr_read(sel)
                got = []
                for s in got_sel:
                    for i in range(s.sizeofSelect * 8):
                        if s.pcrSelect[i // 8] & (1 << (i % 8)):
                            got.append(i)
                if not got:
                    raise TPMError("tpm.pcr_read", f"the TPM returned no {bank} PCRs for {remaining}")
                for i, v in zip(got, values):
                    out.setdefault(bank, {})[i] = bytes(v)
                remaining = [p for p in remaining if p not in got]
        return out

    @_wrap("certify")
    def certify(self, key: KeyInfo, ak: KeyInfo, nonce: bytes) -> tuple[bytes, bytes]:
        """TPM2_Certify of ``key`` by ``ak`` over ``nonce``: ``(TPMS_ATTEST, TPMT_SIGNATURE)``."""
        t = _tss()
        certified, sig = self.esapi.certify(key.handle, ak.handle, nonce,
                                            t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL))
        return certified.marshal()[2:], sig.marshal()

    @_wrap("sign")
    def sign(self, key: KeyInfo, digest: bytes) -> bytes:
        """Sign a SHA-256 digest with a (non-restricted) TPM key: ``TPMT_SIGNATURE``."""
        t = _tss()
        validation = t.TPMT_TK_HASHCHECK(tag=t.TPM2_ST.HASHCHECK, hierarchy=t.TPM2_RH.NULL)
        sig = self.esapi.sign(key.handle, t.TPM2B_DIGEST(digest), t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL),
                              validation)
        return sig.marshal()

    @_wrap("activate credential")
    def activate_credential(self, ak: KeyInfo, ek: KeyInfo, id_object: bytes, encrypted_secret: bytes) -> bytes:
        """TPM2_ActivateCredential: the secret the server made for this AK's Name under this EK.

        ``id_object``/``encrypted_secret`` are the marshalled ``TPM2B_ID_OBJECT`` and
        ``TPM2B_ENCRYPTED_SECRET`` (:func:`attestd.tpm.make_credential`)."""
        t = _tss()
        blob, _ = t.TPM2B_ID_OBJECT.unmarshal(id_object)
        secret, _ = t.TPM2B_ENCRYPTED_SECRET.unmarshal(encrypted_secret)
        session = self.esapi.start_auth_session(
            tpm_key=t.ESYS_TR.NONE, bind=t.ESYS_TR.NONE, session_type=t.TPM2_SE.POLICY,
            symmetric=t.TPMT_SYM_DEF(algorithm=t.TPM2_ALG.NULL), auth_hash=t.TPM2_ALG.SHA256)
        try:
            self.esapi.policy_secret(t.ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
            cert_info = self.esapi.activate_credential(ak.handle, ek.handle, blob, secret,
                                                       session1=t.ESYS_TR.PASSWORD, session2=session)
        finally:
            self.esapi.flush_context(session)
        return bytes(cert_info)

    # -- sealed secrets ----------------------------------------------------------------------------
    def _ek_session(self):
        """A policy session satisfying the EK's authPolicy (PolicySecret(TPM_RH_ENDORSEMENT))."""
        t = _tss()
        session = self.esapi.start_auth_session(
            tpm_key=t.ESYS_TR.NONE, bind=t.ESYS_TR.NONE, session_type=t.TPM2_SE.POLICY,
            symmetric=t.TPMT_SYM_DEF(algorithm=t.TPM2_ALG.NULL), auth_hash=t.TPM2_ALG.SHA256)
        self.esapi.policy_secret(t.ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
        return session

    @_wrap("unseal")
    def unseal(self, ek: KeyInfo, public: bytes, duplicate: bytes, encrypted_seed: bytes, selection: str) -> bytes:
        """Import a sealed object the server duplicated to this EK (:func:`attestd.tpm.seal.seal_to_ek`),
        load it and unseal it in a PolicyPCR session over ``selection``. Fails (``tpm.command_failed``)
        on another TPM, or when a covered PCR no longer holds the attested value."""
        t = _tss()
        pub, _ = t.TPM2B_PUBLIC.unmarshal(public)
        dup, _ = t.TPM2B_PRIVATE.unmarshal(duplicate)
        seed, _ = t.TPM2B_ENCRYPTED_SECRET.unmarshal(encrypted_seed)
        session = self._ek_session()
        try:
            private = self.esapi.import_(ek.handle, t.TPM2B_DATA(), pub, dup, seed,
                                         t.TPMT_SYM_DEF_OBJECT(algorithm=t.TPM2_ALG.NULL), session1=session)
        finally:
            self.esapi.flush_context(session)
        session = self._ek_session()
        try:
            handle = self.esapi.load(ek.handle, private, pub, session1=session)
        finally:
            self.esapi.flush_context(session)
        policy = self.esapi.start_auth_session(
            tpm_key=t.ESYS_TR.NONE, bind=t.ESYS_TR.NONE, session_type=t.TPM2_SE.POLICY,
            symmetric=t.TPMT_SYM_DEF(algorithm=t.TPM2_ALG.NULL), auth_hash=t.TPM2_ALG.SHA256)
        try:
            self.esapi.policy_pcr(policy, t.TPM2B_DIGEST(), t.TPML_PCR_SELECTION.parse(selection))
            data = self.esapi.unseal(handle, session1=policy)
        finally:
            self.esapi.flush_context(policy)
            self.esapi.flush_context(handle)
        return bytes(data)
