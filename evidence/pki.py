"""The platform's own PKI (平台电子认证): root CA, platform seal, timestamp authority and per-user signing certificates.

Everything is created on first start inside one directory. Private keys are PKCS#8, encrypted under a passphrase
derived from a platform master secret (a 0600 file), and every file is written 0600. A CRL signed by the root is
kept fresh here and published at ``{public_url}/api/v1/pki/crl`` so signatures validate offline (PAdES B-LT).

Key choice: EC P-256 with SHA-256 throughout (root, seal, TSA, users). Key generation is instant, so certificates
are issued on demand, and both pyHanko and poppler's pdfsig (NSS) validate ECDSA-SHA256 chains.
"""
from __future__ import annotations

import base64
import fcntl
import logging
import os
import re
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Sequence

from asn1crypto import algos, cms, tsp
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from core.settings import ensure_secret_file

log = logging.getLogger(__name__)

CRL_PATH = "/api/v1/pki/crl"
ROOT_VALIDITY = timedelta(days=30 * 365)
SERVICE_VALIDITY = timedelta(days=10 * 365)  # seal and TSA
USER_VALIDITY = timedelta(days=5 * 365)
USER_RENEW_BEFORE = timedelta(days=30)
CRL_VALIDITY = timedelta(days=7)
CRL_REFRESH_BEFORE = timedelta(days=1)
# Certificates start slightly in the past so a verifier whose clock lags a little still accepts them.
CLOCK_SKEW = timedelta(minutes=10)

_KEY_INFO = b"bidroom/pki/private-key-encryption/v1"
# Our TSA policy. An OID under 2.25 (X.667 UUID arc) needs no registration and cannot clash with anyone's.
TSA_POLICY_OID = "2.25.153887038730959139224319093183407646173"
_PUBLIC_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _write_private_atomic(path: Path, data: bytes) -> None:
    """Write a 0600 file via a temp name and rename, so a crash never leaves half a key behind."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def derive_key_passphrase(master_secret: bytes) -> bytes:
    """The passphrase that encrypts every PKI private key at rest, derived from the platform master secret."""
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(master_secret)
    return base64.urlsafe_b64encode(okm)


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The same certificate as the asn1crypto object pyHanko works with."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def to_asn1_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    """The same private key as the asn1crypto object pyHanko works with (in memory only)."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return asn1_keys.PrivateKeyInfo.load(der)


class PlatformTimeStamper(TimeStamper):
    """The platform's RFC 3161 timestamp authority, in process: answers pyHanko's requests with the TSA key.

    Built on pyHanko's public TimeStamper extension point rather than its test-only DummyTimeStamper, whose
    internals change between releases and which re-parses (and OpenSSL re-validates) the key for every token.
    """

    def __init__(self, *, tsa_cert: asn1_x509.Certificate, tsa_key: PrivateKey,
                 certs_to_embed: Sequence[asn1_x509.Certificate] = ()):
        super().__init__(include_nonce=True)
        self.tsa_cert = tsa_cert
        self._tsa_key = tsa_key
        self._token_certs = [tsa_cert, *certs_to_embed]

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp({
            "status": tsp.PKIStatusInfo({"status": tsp.PKIStatus("granted")}),
            "time_stamp_token": self.token(req, _now()),
        })

    def token(self, req: tsp.TimeStampReq, gen_time: datetime) -> cms.ContentInfo:
        """A signed TSTInfo over the request's message imprint, stamped at gen_time."""
        tst = {
            "version": "v1",
            "policy": TSA_POLICY_OID,
            "message_imprint": req["message_imprint"],
            "serial_number": uuid.uuid4().int,  # unique per token without shared state between workers
            "gen_time": gen_time,
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.tsa_cert.subject),
        }
        if req["nonce"].native is not None:
            tst["nonce"] = req["nonce"]
        content = tsp.TSTInfo(tst).dump()
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": asn1_core.UTCTime(gen_time)})),
            simple_cms_attribute("signing_certificate_v2", as_signing_certificate_v2(self.tsa_cert, "sha256")),
            simple_cms_attribute("message_digest", _sha256(content)),
        ])
        signature, sig_algo = _sign(self._tsa_key, signed_attrs.dump())
        signer_info = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
                "issuer": self.tsa_cert.issuer, "serial_number": self.tsa_cert.serial_number})}),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_algo}),
            "signature": signature,
        })
        signed_data = cms.SignedData({
            "version": "v3",
            "digest_algorithms": cms.DigestAlgorithms([algos.DigestAlgorithm({"algorithm": "sha256"})]),
            "encap_content_info": cms.EncapsulatedContentInfo({
                "content_type": "tst_info", "content": cms.ParsableOctetString(content)}),
            "certificates": cms.CertificateSet([cms.CertificateChoices({"certificate": c}) for c in self._token_certs]),
            "signer_infos": cms.SignerInfos([signer_info]),
        })
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _sign(key: PrivateKey, data: bytes) -> tuple[bytes, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"


@dataclass(frozen=True)
class _KeyPair:
    key: PrivateKey
    cert: x509.Certificate


class Pki:
    """The platform CA and the keys it vouches for, kept in one directory."""

    def __init__(self, directory: Path, *, public_url: str, passphrase: bytes, platform_name: str,
                 root: _KeyPair, seal: _KeyPair, tsa: _KeyPair):
        self.directory = directory
        self.public_url = public_url.rstrip("/")
        self.platform_name = platform_name
        self._passphrase = passphrase
        self._root = root
        self._seal = seal
        self._tsa = tsa
        self._root_asn1 = to_asn1_cert(root.cert)
        self._users: dict[str, _KeyPair] = {}
        self._signers: dict[str, SimpleSigner] = {}
        self._seal_signer: SimpleSigner | None = None
        self._timestamper: PlatformTimeStamper | None = None
        self._crl_der: bytes | None = None
        self._crl_next_update: datetime | None = None
        self._mutex = threading.RLock()

    # ---- creation -----------------------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path, *, public_url: str, master_secret_path: Path | None = None,
                       platform_name: str = "bidroom") -> "Pki":
        """Open the PKI in directory, creating the root, seal, TSA, CRL and master secret on first start."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret_path = master_secret_path or directory.parent / "master.secret"
        passphrase = derive_key_passphrase(ensure_secret_file(secret_path))
        public_url = public_url.rstrip("/")
        with _dir_lock(directory):
            store = _KeyStore(directory, passphrase)
            root = store.load("root")
            if root is None:
                log.info("creating platform root CA in %s", directory)
                root = store.save("root", _make_root(platform_name))
            seal = store.load("seal")
            if seal is None:
                seal = store.save("seal", _make_seal(root, platform_name, public_url))
            tsa = store.load("tsa")
            if tsa is None:
                tsa = store.save("tsa", _make_tsa(root, platform_name, public_url))
            pki = cls(directory, public_url=public_url, passphrase=passphrase, platform_name=platform_name,
                      root=root, seal=seal, tsa=tsa)
            pki._load_or_refresh_crl()
        return pki

    # ---- public material ----------------------------------------------------------------------------------

    @property
    def crl_url(self) -> str:
        return self.public_url + CRL_PATH

    @property
    def root_certificate(self) -> asn1_x509.Certificate:
        """The trust anchor, as pyHanko wants it."""
        return self._root_asn1

    def root_cert_pem(self) -> bytes:
        """The root certificate in PEM, for publishing and for pinning in verifiers."""
        return self._root.cert.public_bytes(serialization.Encoding.PEM)

    def crl_der(self) -> bytes:
        """The current CRL in DER, re-signed by the root when it nears its nextUpdate."""
        with self._mutex:
            if self._crl_der is None or self._crl_next_update - CRL_REFRESH_BEFORE <= _now():
                with _dir_lock(self.directory):
                    self._load_or_refresh_crl()
            return self._crl_der

    # ---- certificates for people --------------------------------------------------------------------------

    def issue_user_cert(self, public_id: str, name: str) -> tuple[PrivateKey, x509.Certificate]:
        """The signing key and certificate of one person, issued on first use and reused from disk after."""
        if not _PUBLIC_ID_RE.match(public_id):
            raise ValueError(f"not a usable public id for a certificate: {public_id!r}")
        if not name or not name.strip():
            raise ValueError("a signing certificate needs the person's name")
        name = name.strip()
        with self._mutex:
            pair = self._users.get(public_id)
            if pair is None or not _user_cert_current(pair.cert, name):
                with _dir_lock(self.directory):
                    store = _KeyStore(self.directory / "users", self._passphrase)
                    pair = store.load(public_id)
                    if pair is None or not _user_cert_current(pair.cert, name):
                        log.info("issuing signing certificate for %s", public_id)
                        pair = store.save(public_id, _make_user(self._root, public_id, name, self.crl_url))
                self._users[public_id] = pair
                self._signers.pop(public_id, None)
            return pair.key, pair.cert

    def user_signer(self, public_id: str, name: str) -> SimpleSigner:
        """A pyHanko signer for one person (expert, agent, supervisor)."""
        with self._mutex:
            self.issue_user_cert(public_id, name)
            signer = self._signers.get(public_id)
            if signer is None:
                pair = self._users[public_id]
                signer = self._signers[public_id] = self._make_signer(pair)
            return signer

    def seal_signer(self) -> SimpleSigner:
        """A pyHanko signer for the platform seal (平台电子签章)."""
        with self._mutex:
            if self._seal_signer is None:
                self._seal_signer = self._make_signer(self._seal)
            return self._seal_signer

    def _make_signer(self, pair: _KeyPair) -> SimpleSigner:
        # The root travels inside each signature so verifiers that only hold a trust list can build the chain.
        return SimpleSigner(signing_cert=to_asn1_cert(pair.cert), signing_key=to_asn1_key(pair.key),
                            cert_registry=SimpleCertificateStore.from_certs([self._root_asn1]))

    def timestamper(self) -> PlatformTimeStamper:
        """The in-process RFC 3161 timestamp authority backed by the platform TSA key (no network)."""
        with self._mutex:
            if self._timestamper is None:
                self._timestamper = PlatformTimeStamper(
                    tsa_cert=to_asn1_cert(self._tsa.cert), tsa_key=self._tsa.key, certs_to_embed=[self._root_asn1])
            return self._timestamper

    def validation_context(self, *, moment: datetime | None = None) -> ValidationContext:
        """A context trusting only the platform root, with the CRL supplied offline and no fetching."""
        return ValidationContext(trust_roots=[self._root_asn1], crls=[self.crl_der()], allow_fetching=False,
                                 revocation_mode="require", moment=moment)

    # ---- CRL ----------------------------------------------------------------------------------------------

    def _load_or_refresh_crl(self) -> None:
        path = self.directory / "crl.der"
        number = 0
        if path.exists():
            data = path.read_bytes()
            parsed = x509.load_der_x509_crl(data)
            number = parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            next_update = parsed.next_update_utc
            if (parsed.is_signature_valid(self._root.key.public_key())
                    and next_update is not None and next_update - CRL_REFRESH_BEFORE > _now()):
                self._crl_der, self._crl_next_update = data, next_update
                return
        data, next_update = _make_crl(self._root, number + 1)
        _write_private_atomic(path, data)
        self._crl_der, self._crl_next_update = data, next_update


# ---- storage ----------------------------------------------------------------------------------------------

@contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """Serialise creation across processes so two workers starting together make one root, not two."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class _KeyStore:
    """<name>.key.pem (encrypted PKCS#8) and <name>.cert.pem pairs in one directory."""

    def __init__(self, directory: Path, passphrase: bytes):
        self.directory = directory
        self.passphrase = passphrase

    def load(self, name: str) -> _KeyPair | None:
        key_path, cert_path = self._paths(name)
        if not (key_path.exists() and cert_path.exists()):
            return None
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=self.passphrase)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            raise RuntimeError(f"{key_path} does not match {cert_path}")
        return _KeyPair(key, cert)

    def save(self, name: str, pair: _KeyPair) -> _KeyPair:
        key_path, cert_path = self._paths(name)
        pem = pair.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(self.passphrase))
        _write_private_atomic(key_path, pem)
        _write_private_atomic(cert_path, pair.cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.key.pem", self.directory / f"{name}.cert.pem"


# ---- certificate profiles ---------------------------------------------------------------------------------

def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, digital_signature=False, non_repudiation=False, cert_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=non_repudiation,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None)])


def _issue(root: _KeyPair, subject: x509.Name, key: PrivateKey, validity: timedelta,
           extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    now = _now()
    not_after = min(now + validity, root.cert.not_valid_after_utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(root.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - CLOCK_SKEW)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
                              critical=False))
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(root.key, hashes.SHA256())


def _make_root(platform_name: str) -> _KeyPair:
    key = _new_ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, platform_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{platform_name} Platform Root CA")])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + ROOT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _KeyPair(key, cert)


def _make_seal(root: _KeyPair, platform_name: str, public_url: str) -> _KeyPair:
    key = _new_ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, platform_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{platform_name} 平台电子签章 Platform Seal")])
    cert = _issue(root, subject, key, SERVICE_VALIDITY, [
        (_key_usage(digital_signature=True, non_repudiation=True), True),
        (_crl_dp(public_url + CRL_PATH), False),
    ])
    return _KeyPair(key, cert)


def _make_tsa(root: _KeyPair, platform_name: str, public_url: str) -> _KeyPair:
    key = _new_ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, platform_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{platform_name} Timestamp Authority")])
    cert = _issue(root, subject, key, SERVICE_VALIDITY, [
        (_key_usage(digital_signature=True, non_repudiation=True), True),
        # RFC 3161 §2.3: the TSA certificate carries exactly this EKU, marked critical.
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
        (_crl_dp(public_url + CRL_PATH), False),
    ])
    return _KeyPair(key, cert)


def _make_user(root: _KeyPair, public_id: str, name: str, crl_url: str) -> _KeyPair:
    key = _new_ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, public_id)])
    cert = _issue(root, subject, key, USER_VALIDITY, [
        (_key_usage(digital_signature=True, non_repudiation=True), True),
        (_crl_dp(crl_url), False),
    ])
    return _KeyPair(key, cert)


def _user_cert_current(cert: x509.Certificate, name: str) -> bool:
    """Reuse a stored certificate only while it names the same person and is not about to expire."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return bool(cns) and cns[0].value == name and cert.not_valid_after_utc - USER_RENEW_BEFORE > _now()


def _make_crl(root: _KeyPair, number: int) -> tuple[bytes, datetime]:
    now = _now()
    next_update = now + CRL_VALIDITY
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(root.cert.subject)
           .last_update(now - CLOCK_SKEW)
           .next_update(next_update)
           .add_extension(x509.CRLNumber(number), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
                          critical=False)
           .sign(root.key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.DER), next_update


def load_certificate(data: bytes) -> asn1_x509.Certificate:
    """Parse a PEM or DER certificate (e.g. a pinned platform root) for pyHanko."""
    if data.lstrip().startswith(b"-----BEGIN"):
        data = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(data)
