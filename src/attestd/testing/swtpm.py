"""A real TPM 2.0 for tests and benchmarks: ``swtpm`` driven by tpm2-tools.

::

    with SwTPM() as tpm:
        ek = tpm.create_ek("rsa")
        ak = tpm.create_ak(ek, "ecc", hash="sha256")
        tpm.extend(16, {"sha256": digest})
        q = tpm.quote(ak, {"sha256": [0, 16]}, nonce=b"...")
        attestd.tpm.verify_quote(q.ak_public, q.attest, q.signature, nonce=q.nonce, pcrs=q.pcrs)

:class:`SwTPM` starts ``swtpm socket --tpm2`` on two consecutive free loopback ports (the swtpm
TCTI expects the control channel on port + 1) with a private state
directory and ``--flags not-need-init,startup-clear`` (so the TPM is powered on and has run
TPM2_Startup(CLEAR)); :attr:`SwTPM.tcti` is the ``swtpm:host=127.0.0.1,port=N`` string tpm2-tools
and tpm2-tss take. On exit (also when the body raised) the process is stopped and the directory
removed; a finalizer kills the process if the object is dropped without exiting.

A fresh swtpm 0.7 state has SHA-1, SHA-256, SHA-384 and SHA-512 PCR banks allocated;
:meth:`SwTPM.allocate_pcr_banks` changes that with ``tpm2_pcrallocate`` and a restart (bank
allocation takes effect at the next TPM2_Startup after a reset).

There is no resource manager between tpm2-tools and swtpm, so every helper flushes transient
objects and sessions after it ran (swtpm has only 3 transient object slots); keys live as saved
context files in the state directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attestd.errors import EvidenceError

__all__ = [
    "TPM2_CERTIFY_QUALIFYING_DATA",
    "QuoteOutput",
    "SwTPM",
    "SwTPMError",
    "TPMKey",
    "selection_string",
    "swtpm_available",
]

_TOOLS = ("swtpm", "tpm2_createek", "tpm2_createak", "tpm2_quote", "tpm2_pcrextend", "tpm2_pcrread",
          "tpm2_flushcontext", "tpm2_activatecredential", "tpm2_startauthsession", "tpm2_policysecret")


#: qualifyingData tpm2-tools 5.x's tpm2_certify sends (tools/tpm2_certify.c).
TPM2_CERTIFY_QUALIFYING_DATA = bytes.fromhex("00ff55aa")


def swtpm_available() -> bool:
    """True when swtpm and the tpm2-tools this harness uses are installed."""
    return all(shutil.which(t) for t in _TOOLS)


class SwTPMError(RuntimeError):
    """swtpm could not start, or a tpm2-tools command failed (``stderr`` holds its message)."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(message + (f": {stderr.strip()}" if stderr.strip() else ""))
        self.stderr = stderr
        self.returncode = returncode


@dataclass(frozen=True, slots=True)
class TPMKey:
    """A key on the swtpm: its saved context file, ``TPM2B_PUBLIC`` bytes and Name."""

    context: Path
    public: bytes
    name: bytes
    alg: str
    hash: str | None = None
    scheme: str | None = None


@dataclass(frozen=True, slots=True)
class QuoteOutput:
    """What tpm2_quote produced: ``TPMS_ATTEST``, ``TPMT_SIGNATURE``, the AK's ``TPM2B_PUBLIC``,
    the nonce, and the quoted PCR values tpm2_quote read (``{bank: {index: value}}``)."""

    attest: bytes
    signature: bytes
    ak_public: bytes
    nonce: bytes
    pcrs: dict[str, dict[int, bytes]] = field(default_factory=dict)
    stdout: str = ""


@dataclass(frozen=True, slots=True)
class CreatedObject:
    """A primary object with what TPM2_CreatePrimary reported about its creation: the
    ``TPM2B_CREATION_DATA``, the ``TPM2B_DIGEST`` creationHash and the creation ticket file."""

    key: TPMKey
    creation_data: bytes
    creation_hash: bytes
    ticket: Path


def selection_string(selection: str | Mapping[str, Iterable[int]]) -> str:
    """tpm2-tools PCR selection syntax (``sha1:0,1+sha256:16``) from ``{bank: [pcrs]}``."""
    if isinstance(selection, str):
        return selection
    return "+".join(f"{bank}:{','.join(str(p) for p in pcrs)}" for bank, pcrs in selection.items())


def _free_port_pair() -> tuple[int, int]:
    """Two consecutive free loopback ports: tpm2-tss's swtpm TCTI talks to the control channel on
    the server port + 1."""
    for _ in range(50):
        a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port, port + 1
        finally:
            a.close()
            b.close()
    raise SwTPMError("no two consecutive free loopback ports")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class SwTPM:
    """A running swtpm TPM 2.0 (a context manager). See the module docstring."""

    def __init__(self, workdir: str | os.PathLike | None = None, *, startup_timeout: float = 10.0,
                 command_timeout: float = 60.0) -> None:
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix="attestd-swtpm-")) if workdir is None else Path(workdir)
        self.state_dir = self.dir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.port: int | None = None
        self.ctrl_port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._counter = 0

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> SwTPM:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start swtpm (on new free ports) with the existing state, retrying a lost port race."""
        if self.running:
            return
        if not swtpm_available():
            raise SwTPMError("swtpm and tpm2-tools are not installed")
        last = ""
        for _ in range(5):
            self.port, self.ctrl_port = _free_port_pair()
            log = self.dir / "swtpm.log"
            proc = subprocess.Popen(
                ["swtpm", "socket", "--tpm2",
                 "--tpmstate", f"dir={self.state_dir}",
                 "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                 "--ctrl", f"type=tcp,port={self.ctrl_port},bindaddr=127.0.0.1",
                 "--flags", "not-need-init,startup-clear",
                 "--log", f"file={log},level=1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            self._proc = proc
            self._finalizer = weakref.finalize(self, _stop, proc)
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return
                except OSError:
                    time.sleep(0.02)
            _stop(proc)
            last = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            self._proc = None
        raise SwTPMError("swtpm did not start", stderr=last)

    def stop(self) -> None:
        """Stop swtpm, keeping its state (a power cycle when followed by :meth:`start`)."""
        _stop(self._proc)
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def restart(self) -> None:
        """Power-cycle the TPM: TPM Reset + Startup(CLEAR), so ``resetCount`` increments."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- running tools -------------------------------------------------------------------
    @property
    def tcti(self) -> str:
        if self.port is None:
            raise SwTPMError("swtpm is not running")
        return f"swtpm:host=127.0.0.1,port={self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TPM2TOOLS_TCTI"] = self.tcti
        env.pop("TPM2TOOLS_ENABLE_ERRATA", None)
        return env

    def run(self, tool: str, *args: str | os.PathLike, input: bytes | None = None, check: bool = True,
            flush: bool = True) -> subprocess.CompletedProcess:
        """Run a tpm2-tools command against this TPM (stdout/stderr as text).

        ``flush`` then flushes transient objects (the tools leave created/loaded keys resident).
        A failing command raises :class:`SwTPMError` when ``check``.
        """
        if not self.running:
            raise SwTPMError("swtpm is not running")
        cmd = [tool, *map(str, args)]
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True, env=self.env, cwd=self.dir,
                                  timeout=self.command_timeout, check=False)
        finally:
            if flush:
                subprocess.run(["tpm2_flushcontext", "-t"], capture_output=True, env=self.env,
                               timeout=self.command_timeout, check=False)
        out = subprocess.CompletedProcess(cmd, proc.returncode, proc.stdout.decode(errors="replace"),
                                          proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            raise SwTPMError(f"{tool} failed with exit code {proc.returncode}", stderr=out.stderr,
                             returncode=proc.returncode)
        return out

    def _path(self, stem: str) -> Path:
        self._counter += 1
        return self.dir / f"{stem}-{self._counter}"

    # -- keys -----------------------------------------------------------------------------
    def create_ek(self, alg: str = "rsa") -> TPMKey:
        """TPM2_CreatePrimary with the default EK template (``rsa`` = RSA-2048, ``ecc`` = P-256)."""
        ctx, pub = self._path("ek.ctx"), self._path("ek.pub")
        self.run("tpm2_createek", "-c", ctx, "-G", alg, "-u", pub)
        return TPMKey(ctx, pub.read_bytes(), self._name_of(pub.read_bytes()), alg)

    def create_ak(self, ek: TPMKey, alg: str = "rsa", *, hash: str = "sha256", scheme: str | None = None) -> TPMKey:
        """tpm2_createak under ``ek``: ``alg`` is ``rsa``, ``ecc`` (P-256) or ``ecc384``; ``scheme``
        defaults to ``rsassa`` / ``ecdsa``."""
        scheme = scheme or ("ecdsa" if alg.startswith("ecc") else "rsassa")
        ctx, pub, name = self._path("ak.ctx"), self._path("ak.pub"), self._path("ak.name")
        self.run("tpm2_createak", "-C", ek.context, "-c", ctx, "-G", alg, "-g", hash, "-s", scheme,
                 "-u", pub, "-n", name)
        return TPMKey(ctx, pub.read_bytes(), name.read_bytes(), alg, hash, scheme)

    def read_public(self, context: Path) -> tuple[bytes, bytes]:
        """TPM2_ReadPublic: ``(TPM2B_PUBLIC, Name)`` as the TPM reports them."""
        pub, name = self._path("readpublic.pub"), self._path("readpublic.name")
        self.run("tpm2_readpublic", "-c", context, "-o", pub, "-n", name)
        return pub.read_bytes(), name.read_bytes()

    def create_primary(self, alg: str, *, hierarchy: str = "o", attributes: str | None = None) -> CreatedObject:
        """tpm2_createprimary of any tpm2-tools key type (``aes128cfb``, ``hmac``, ``rsa``, ``ecc``...),
        keeping its creation data, hash and ticket (for TPM2_CertifyCreation)."""
        ctx, data = self._path("primary.ctx"), self._path("primary.creation")
        digest, ticket = self._path("primary.creationhash"), self._path("primary.ticket")
        args: list[str | os.PathLike] = ["-C", hierarchy, "-G", alg, "-c", ctx, "--creation-data", data,
                                         "--creation-ticket", ticket, "-d", digest]
        if attributes:
            args += ["-a", attributes]
        self.run("tpm2_createprimary", *args)
        public, name = self.read_public(ctx)
        return CreatedObject(TPMKey(ctx, public, name, alg), data.read_bytes(), digest.read_bytes(), ticket)

    def certify_creation(self, signer: TPMKey, obj: CreatedObject, *, nonce: bytes = b"") -> tuple[bytes, bytes]:
        """TPM2_CertifyCreation of ``obj`` by ``signer``: ``(TPMS_ATTEST, TPMT_SIGNATURE)``."""
        att, sig, digest = self._path("cc.att"), self._path("cc.sig"), self._path("cc.hash")
        digest.write_bytes(obj.creation_hash)
        args: list[str | os.PathLike] = ["-C", signer.context, "-c", obj.key.context, "-d", digest,
                                         "-t", obj.ticket, "-o", sig, "--attestation", att, "-f", "tss"]
        if signer.hash:
            args += ["-g", signer.hash]
        if signer.scheme:
            args += ["-s", signer.scheme]
        if nonce:
            args += ["-q", nonce.hex()]
        self.run("tpm2_certifycreation", *args)
        return att.read_bytes(), sig.read_bytes()

    @staticmethod
    def _name_of(tpm2b_public: bytes) -> bytes:
        from attestd.tpm.public import parse_public_2b

        return parse_public_2b(tpm2b_public).name

    # -- PCRs ------------------------------------------------------------------------------
    def extend(self, pcr: int, digests: Mapping[str, bytes]) -> None:
        """TPM2_PCR_Extend of ``pcr`` with one digest per bank (``{"sha256": digest}``)."""
        spec = ",".join(f"{bank}={d.hex()}" for bank, d in digests.items())
        self.run("tpm2_pcrextend", f"{pcr}:{spec}", flush=False)

    def read_pcrs(self, selection: str | Mapping[str, Iterable[int]]) -> dict[str, dict[int, bytes]]:
        """TPM2_PCR_Read, parsed from tpm2_pcrread's YAML."""
        from attestd.tpm.pcrfile import parse_tpm2_tools_pcrs

        out = self.run("tpm2_pcrread", selection_string(selection), flush=False)
        return parse_tpm2_tools_pcrs(out.stdout)

    def pcr_banks(self) -> list[str]:
        """Banks with at least one PCR allocated (``tpm2_getcap pcrs``)."""
        out = self.run("tpm2_getcap", "pcrs", flush=False).stdout
        banks = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("- ") and ":" in line:
                name, _, rest = line[2:].partition(":")
                if rest.strip() not in ("[ ]", "[]", ""):
                    banks.append(name.strip())
        return banks

    def allocate_pcr_banks(self, banks: Sequence[str]) -> None:
        """Allocate exactly ``banks`` (all 24 PCRs each) and power-cycle so it takes effect.

        TPM2_PCR_Allocate leaves banks it is not told about as they are, so every implemented bank
        that is not wanted is listed with ``none``.
        """
        current = self.run("tpm2_getcap", "pcrs", flush=False).stdout
        known = [line.strip()[2:].partition(":")[0].strip() for line in current.splitlines()
                 if line.strip().startswith("- ") and ":" in line]
        spec = "+".join([f"{b}:all" for b in banks] + [f"{b}:none" for b in known if b not in banks])
        self.run("tpm2_pcrallocate", spec, flush=False)
        self.restart()

    # -- attestation ----------------------------------------------------------------------
    def quote(self, ak: TPMKey, selection: str | Mapping[str, Iterable[int]], *, nonce: bytes = b"",
              hash: str | None = None) -> QuoteOutput:
        """TPM2_Quote with ``ak`` over ``selection``; ``hash`` defaults to the AK's scheme hash."""
        from attestd.tpm.pcrfile import parse_tpm2_tools_pcrs

        msg, sig, pcrs = self._path("quote.msg"), self._path("quote.sig"), self._path("quote.pcrs")
        args: list[str | os.PathLike] = ["-c", ak.context, "-l", selection_string(selection),
                                         "-m", msg, "-s", sig, "-o", pcrs]
        if nonce:
            args += ["-q", nonce.hex()]
        if hash or ak.hash:
            args += ["-g", hash or ak.hash or "sha256"]
        if ak.scheme:
            args += ["--scheme", ak.scheme]
        out = self.run("tpm2_quote", *args)
        try:
            values = parse_tpm2_tools_pcrs(out.stdout)
        except EvidenceError:  # nothing selected that is allocated: tpm2_quote prints no values
            values = {}
        return QuoteOutput(msg.read_bytes(), sig.read_bytes(), ak.public, nonce, values, out.stdout)

    def certify(self, signer: TPMKey, obj: TPMKey) -> tuple[bytes, bytes]:
        """TPM2_Certify of ``obj`` by ``signer``: ``(TPMS_ATTEST, TPMT_SIGNATURE)``.

        tpm2-tools 5.4's tpm2_certify has no option for qualifyingData; it always sends
        :data:`TPM2_CERTIFY_QUALIFYING_DATA` (``00ff55aa``), which becomes ``extraData``.
        """
        att, sig = self._path("certify.att"), self._path("certify.sig")
        args: list[str | os.PathLike] = ["-c", obj.context, "-C", signer.context, "-o", att, "-s", sig]
        if signer.hash:
            args += ["-g", signer.hash]
        if signer.scheme:
            args += ["--scheme", signer.scheme]
        self.run("tpm2_certify", *args)
        return att.read_bytes(), sig.read_bytes()

    def activate_credential(self, ak: TPMKey, ek: TPMKey, credential: bytes) -> bytes:
        """TPM2_ActivateCredential of a tpm2-tools credential file, authorising the EK with
        PolicySecret(TPM_RH_ENDORSEMENT) as the default EK policy requires; returns the secret."""
        cred, out, session = self._path("cred.in"), self._path("cred.out"), self._path("session.ctx")
        cred.write_bytes(credential)
        try:
            self.run("tpm2_startauthsession", "--policy-session", "-S", session, flush=False)
            self.run("tpm2_policysecret", "-S", session, "-c", "e", flush=False)
            self.run("tpm2_activatecredential", "-c", ak.context, "-C", ek.context, "-i", cred, "-o", out,
                     "-P", f"session:{session}")
        finally:
            self.run("tpm2_flushcontext", "-s", check=False, flush=False)
        return out.read_bytes()
