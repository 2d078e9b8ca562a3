"""The agency's signing PKI for export packages (R7): a CA and a signing certificate.

``vaultd init`` creates, once, an ECDSA P-256 agency CA (self-signed, 20 years)
and a signing certificate issued by it (code-signing-like: digitalSignature,
10 years) for the embedded default. An agency with its own PKI names its
certificate, chain and key in ``[export]`` instead (see ``signing_identity``).
Keys are written 0600 and never overwritten, each published whole and exactly
once under the keys lock (see :mod:`vaultd.keys`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vaultd.errors import ConfigError, StorageError
from vaultd.files import write_once
from vaultd.i18n import _

CA_KEY = "agency-ca-key.pem"
CA_CERT = "agency-ca.pem"
SIGN_KEY = "export-signing-key.pem"
SIGN_CERT = "export-signing.pem"


@dataclass(frozen=True)
class SigningIdentity:
    """What signs a package: the key, its certificate and the chain up to (and with) the CA."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, nearest first; the last is the root


def _name(common: str, agency: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if agency:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common: str, agency: str, now: dt.datetime, years: int = 20,
            key: ec.EllipticCurvePrivateKey | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = _name(common, agency)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue_signing(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common: str, agency: str,
                  now: dt.datetime, years: int = 10,
                  key: ec.EllipticCurvePrivateKey | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common, agency)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def ensure_pki(keys_dir: Path, vault_id: str, now: dt.datetime) -> list[str]:
    """Create the embedded agency CA and signing certificate if missing; return what was created.

    The caller holds the keys lock exclusively (:func:`vaultd.keys.ensure_keys`). Each
    key is published before its certificate, so a certificate on disk always has its
    key; a key left without its certificate (an init cut short) gets one. Should
    another process publish a file first all the same, its file is the one used."""
    created: list[str] = []
    try:
        ca_key_path, ca_path = keys_dir / CA_KEY, keys_dir / CA_CERT
        if not ca_path.exists():
            ca_key = _key_once(ca_key_path, created)
            _, ca = make_ca(f"vaultd agency CA {vault_id[:12]}", "", now, key=ca_key)
            if write_once(ca_path, ca.public_bytes(serialization.Encoding.PEM)):
                created.append(CA_CERT)
        if not (keys_dir / SIGN_CERT).exists():
            ca_key = _load_key(ca_key_path)
            ca = _load_certs(ca_path)[0]
            key = _key_once(keys_dir / SIGN_KEY, created)
            _, cert = issue_signing(ca_key, ca, f"vaultd export signing {vault_id[:12]}", "", now, key=key)
            if write_once(keys_dir / SIGN_CERT, cert.public_bytes(serialization.Encoding.PEM)):
                created.append(SIGN_CERT)
    except OSError as exc:
        raise StorageError(_("cannot write the export keys in %s: %s") % (keys_dir, exc.strerror)) from exc
    return created


def _key_once(path: Path, created: list[str]) -> ec.EllipticCurvePrivateKey:
    """The P-256 key at ``path``, made and published now if there is none."""
    if not path.exists():
        if write_once(path, _pem_key(ec.generate_private_key(ec.SECP256R1()))):
            created.append(path.name)
    return _load_key(path)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(_("cannot read the signing key %s: %s") % (path, exc.strerror)) from exc
    except ValueError as exc:
        raise ConfigError(_("%s is not a PEM private key: %s") % (path, exc)) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(_("%s is not an ECDSA P-256 key") % path,
                          hint=_("export packages are signed with ECDSA P-256 (prime256v1)"))
    return key


def _load_certs(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ConfigError(_("cannot read the certificate %s: %s") % (path, exc.strerror)) from exc
    except ValueError as exc:
        raise ConfigError(_("%s is not a PEM certificate file: %s") % (path, exc)) from exc
    return certs


def signing_identity(keys_dir: Path, cert_file: str = "", key_file: str = "",
                     chain_file: str = "") -> SigningIdentity:
    """The configured signing identity, else the embedded default made by ``init``."""
    if bool(cert_file) != bool(key_file):
        raise ConfigError(_("export.signing_cert and export.signing_key must be set together"))
    if cert_file:
        key = _load_key(Path(key_file))
        certs = _load_certs(Path(cert_file))
        chain = _load_certs(Path(chain_file)) if chain_file else certs[1:]
        cert = certs[0]
    else:
        from vaultd.keys import keys_locked  # (keys imports this module where it makes keys)

        with keys_locked(keys_dir, exclusive=False):  # never a key without its certificate, mid-init
            if not (keys_dir / SIGN_CERT).exists():
                raise ConfigError(_("this vault has no export signing certificate yet (%s)") % (keys_dir / SIGN_CERT),
                                  hint=_("run 'vaultd init' (safe to repeat): it creates the agency CA and the "
                                         "signing certificate, or set [export] signing_cert and signing_key"))
            key = _load_key(keys_dir / SIGN_KEY)
            cert = _load_certs(keys_dir / SIGN_CERT)[0]
            chain = _load_certs(keys_dir / CA_CERT)
    if cert.public_key() != key.public_key():
        raise ConfigError(_("the signing key does not belong to the signing certificate"))
    return SigningIdentity(key, cert, tuple(chain))


def ca_pem(keys_dir: Path) -> bytes:
    """The embedded agency CA certificate, the one to pin with ``vaultd verify --ca``."""
    try:
        return (keys_dir / CA_CERT).read_bytes()
    except OSError as exc:
        raise StorageError(_("cannot read the agency CA %s: %s") % (keys_dir / CA_CERT, exc.strerror)) from exc
