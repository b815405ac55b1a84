"""The platform PKI on disk: created once, keys encrypted and private, certificates fit for their purpose."""
from __future__ import annotations

import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from evidence.pki import Pki, derive_key_passphrase

PUBLIC_URL = "https://bidroom.example.cn"


@pytest.fixture()
def pki_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "pki"


@pytest.fixture()
def pki(pki_dir: Path) -> Pki:
    return Pki.load_or_create(pki_dir, public_url=PUBLIC_URL)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_start_creates_every_file_readable_by_the_owner_only(pki, pki_dir):
    pki.issue_user_cert("U-7Q4M2K", "张伟")
    files = [p for p in pki_dir.parent.rglob("*") if p.is_file() and p.name != ".lock"]
    names = {p.relative_to(pki_dir.parent).as_posix() for p in files}
    assert {"master.secret", "pki/root.key.pem", "pki/root.cert.pem", "pki/seal.key.pem", "pki/tsa.key.pem",
            "pki/crl.der", "pki/users/U-7Q4M2K.key.pem", "pki/users/U-7Q4M2K.cert.pem"} <= names
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_private_keys_open_only_with_the_passphrase_from_the_master_secret(pki, pki_dir):
    pem = (pki_dir / "seal.key.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"not the platform passphrase")
    passphrase = derive_key_passphrase((pki_dir.parent / "master.secret").read_bytes())
    key = serialization.load_pem_private_key(pem, password=passphrase)
    assert key.public_key() == _cert(pki_dir / "seal.cert.pem").public_key()


def test_a_second_start_reuses_the_same_root(pki, pki_dir):
    again = Pki.load_or_create(pki_dir, public_url=PUBLIC_URL)
    assert again.root_cert_pem() == pki.root_cert_pem()


def test_root_is_a_ca_that_only_signs_certificates_and_crls(pki):
    root = x509.load_pem_x509_certificate(pki.root_cert_pem())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature


def test_timestamp_authority_certificate_has_only_a_critical_timestamping_eku(pki_dir, pki):
    eku = _cert(pki_dir / "tsa.cert.pem").extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_user_certificate_names_the_person_and_commits_to_non_repudiation(pki):
    _, cert = pki.issue_user_cert("U-7Q4M2K", "欧阳娜娜")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "欧阳娜娜"
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "U-7Q4M2K"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.content_commitment and usage.value.digital_signature
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name] == [f"{PUBLIC_URL}/api/v1/pki/crl"]
    root = x509.load_pem_x509_certificate(pki.root_cert_pem())
    cert.verify_directly_issued_by(root)


def test_user_certificate_is_issued_once_and_found_again_after_a_restart(pki, pki_dir):
    _, first = pki.issue_user_cert("U-7Q4M2K", "李娜")
    _, again = pki.issue_user_cert("U-7Q4M2K", "李娜")
    _, after_restart = Pki.load_or_create(pki_dir, public_url=PUBLIC_URL).issue_user_cert("U-7Q4M2K", "李娜")
    assert first.serial_number == again.serial_number == after_restart.serial_number


def test_a_renamed_person_gets_a_new_certificate_with_the_new_name(pki):
    _, old = pki.issue_user_cert("U-7Q4M2K", "李娜")
    _, new = pki.issue_user_cert("U-7Q4M2K", "李娜娜")
    assert new.serial_number != old.serial_number
    assert new.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "李娜娜"


def test_crl_is_signed_by_the_root_current_and_revokes_nobody(pki):
    crl = x509.load_der_x509_crl(pki.crl_der())
    root = x509.load_pem_x509_certificate(pki.root_cert_pem())
    assert crl.is_signature_valid(root.public_key())
    now = datetime.now(timezone.utc)
    assert crl.last_update_utc <= now < crl.next_update_utc
    assert len(crl) == 0


@pytest.mark.parametrize("public_id", ["", "../../etc/passwd", "U 7Q4M2K", "x" * 65])
def test_unusable_public_ids_are_refused_before_touching_the_disk(pki, pki_dir, public_id):
    with pytest.raises(ValueError):
        pki.issue_user_cert(public_id, "张伟")
    assert not (pki_dir / "users").exists()


def test_a_certificate_needs_a_name(pki):
    with pytest.raises(ValueError):
        pki.issue_user_cert("U-7Q4M2K", "  ")
