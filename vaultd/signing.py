"""CMS detached signatures (RFC 5652) and RFC 3161 timestamps for export packages.

Signing uses ``cryptography``'s PKCS#7 builder (DER, detached, binary: what
``openssl cms -verify -binary -inform DER -content FILE`` checks). Verifying
parses the CMS with ``asn1crypto`` and checks every step itself with
``cryptography``, so ``vaultd verify`` needs no openssl: the message digest
attribute against the content, the signer's ECDSA/RSA signature over the
signed attributes, and the certificate path up to a CA the *caller* pins.
Certificates carried in the CMS only help build the path; they are never
trusted by themselves.

Pure apart from :func:`request_timestamp` (HTTP to a TSA).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
from asn1crypto import cms, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from vaultd.errors import IntegrityError, StorageError
from vaultd.i18n import _
from vaultd.pki import SigningIdentity

_HASHES: dict[str, type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def sign_detached(content: bytes, ident: SigningIdentity) -> bytes:
    """DER CMS SignedData over ``content`` (detached), with the certificate chain."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(ident.cert, ident.key, hashes.SHA256())
    for cert in ident.chain:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                     pkcs7.PKCS7Options.Binary])


@dataclass(frozen=True)
class SignatureCheck:
    """What a CMS signature says, once its maths holds."""

    signer: str  # the signer certificate's subject, RFC 4514
    signer_cert: x509.Certificate
    certs: tuple[x509.Certificate, ...]  # every certificate carried in the CMS
    signing_time: datetime | None


def _fail(message: str) -> IntegrityError:
    return IntegrityError(message)


def _signer_cert(sd: cms.SignedData, si: cms.SignerInfo) -> tuple[x509.Certificate, list[x509.Certificate]]:
    carried = [c.chosen for c in sd["certificates"] or [] if c.name == "certificate"]
    sid = si["sid"]
    found = None
    for cert in carried:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.issuer == ias["issuer"] and cert.serial_number == ias["serial_number"].native:
                found = cert
        elif cert.key_identifier == sid.chosen.native:
            found = cert
    if found is None:
        raise _fail(_("the signature does not carry the signer's certificate"))
    return (x509.load_der_x509_certificate(found.dump()),
            [x509.load_der_x509_certificate(c.dump()) for c in carried])


def _check_signer_signature(cert: x509.Certificate, si: cms.SignerInfo, signed: bytes, algo: str) -> None:
    sig = si["signature"].native
    key = cert.public_key()
    hash_cls = _HASHES[algo]
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, signed, ec.ECDSA(hash_cls()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, signed, padding.PKCS1v15(), hash_cls())
        else:
            raise _fail(_("unsupported signer key type %s") % type(key).__name__)
    except InvalidSignature:
        raise _fail(_("the signature does not verify with the signer's certificate "
                      "(the signed file or the signature was changed)")) from None


def check_cms(signature_der: bytes, content: bytes | None) -> tuple[SignatureCheck, bytes]:
    """Check a CMS SignedData's own maths over ``content`` (or its encapsulated
    content when ``content`` is None). Returns the facts and the content checked.

    Raises :class:`IntegrityError` naming what does not hold. The signer is not
    yet trusted: see :func:`check_chain`.
    """
    try:
        info = cms.ContentInfo.load(signature_der)
        if info["content_type"].native != "signed_data":
            raise _fail(_("the signature is not a CMS SignedData"))
        sd = info["content"]
        infos = list(sd["signer_infos"])
        if len(infos) != 1:
            raise _fail(_("the signature has %d signers; exactly one is expected") % len(infos))
        si = infos[0]
        if content is None:
            content = sd["encap_content_info"]["content"].contents
        algo = si["digest_algorithm"]["algorithm"].native
        if algo not in _HASHES:
            raise _fail(_("unsupported digest algorithm %s") % algo)
        attrs = si["signed_attrs"]
        if not attrs:
            raise _fail(_("the signature has no signed attributes"))
        digest = None
        when = None
        for attr in attrs:
            kind = attr["type"].native
            if kind == "message_digest":
                digest = attr["values"][0].native
            elif kind == "signing_time":
                when = attr["values"][0].native
        want = hashlib.new(algo, content).digest()
        if digest != want:
            raise _fail(_("the signed file does not match the signature (message digest differs)"))
        signer, carried = _signer_cert(sd, si)
        _check_signer_signature(signer, si, b"\x31" + attrs.dump()[1:], algo)
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail(_("the signature is not valid CMS: %s") % exc) from None
    return SignatureCheck(signer.subject.rfc4514_string(), signer, tuple(carried), when), content


def check_chain(leaf: x509.Certificate, carried: tuple[x509.Certificate, ...],
                anchors: list[x509.Certificate], at: datetime | None) -> x509.Certificate:
    """Build a path from ``leaf`` up to one of ``anchors`` (the pinned CAs) using the
    carried certificates as intermediates; returns the anchor reached."""
    anchor_der = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    current, seen = leaf, 0
    pool = [*carried, *anchors]
    while seen < 8:
        _check_valid(current, at)
        if current.public_bytes(serialization.Encoding.DER) in anchor_der:
            return current
        issuer = next((c for c in pool if c.subject == current.issuer and c != current and _issued(current, c)),
                      None)
        if issuer is None:
            if current.issuer == current.subject:
                raise _fail(_("the signer's chain ends at %s, which is not the pinned CA")
                            % current.subject.rfc4514_string())
            raise _fail(_("no certificate path from the signer %s to the pinned CA")
                        % leaf.subject.rfc4514_string())
        if not _is_ca(issuer):
            raise _fail(_("%s is not a CA certificate") % issuer.subject.rfc4514_string())
        current, seen = issuer, seen + 1
    raise _fail(_("the certificate chain is too long"))


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_valid(cert: x509.Certificate, at: datetime | None) -> None:
    if at is not None and not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise _fail(_("certificate %s was not valid at %s") % (cert.subject.rfc4514_string(), at.isoformat()))


# -- RFC 3161 timestamps -----------------------------------------------------------------

def timestamp_query(data: bytes) -> tuple[bytes, int]:
    """A DER TimeStampReq for SHA-256 of ``data``, asking for the TSA's certificate."""
    nonce = secrets.randbits(63)
    req = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                            "hashed_message": hashlib.sha256(data).digest()},
        "nonce": nonce, "cert_req": True})
    return req.dump(), nonce


def request_timestamp(url: str, data: bytes, timeout_s: float = 30.0) -> bytes:
    """Ask the TSA at ``url`` for a timestamp over ``data``; returns the DER TimeStampResp (.tsr)."""
    query, nonce = timestamp_query(data)
    try:
        resp = httpx.post(url, content=query, timeout=timeout_s,
                          headers={"Content-Type": "application/timestamp-query"})
    except httpx.HTTPError as exc:
        raise StorageError(_("cannot reach the timestamp authority %s: %s") % (url, exc),
                           hint=_("check export.tsa_url, or leave it empty to export without a timestamp")) from None
    if resp.status_code != 200:
        raise StorageError(_("the timestamp authority %s answered HTTP %d") % (url, resp.status_code))
    check_timestamp(resp.content, data, nonce)
    return resp.content


@dataclass(frozen=True)
class TimestampCheck:
    time: datetime
    tsa: str
    check: SignatureCheck


def check_timestamp(tsr: bytes, data: bytes, nonce: int | None = None) -> TimestampCheck:
    """Check a TimeStampResp: granted, over SHA-256 of ``data``, its CMS signature intact."""
    try:
        resp = tsp.TimeStampResp.load(tsr)
        status = resp["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise _fail(_("the timestamp authority did not grant the timestamp (%s)") % status)
        token = resp["time_stamp_token"]
        check, content = check_cms(token.dump(), None)
        info = tsp.TSTInfo.load(content)
        imprint = info["message_imprint"]
        algo = imprint["hash_algorithm"]["algorithm"].native
        if algo not in _HASHES or imprint["hashed_message"].native != hashlib.new(algo, data).digest():
            raise _fail(_("the timestamp is not over this signature (message imprint differs)"))
        if nonce is not None and info["nonce"].native != nonce:
            raise _fail(_("the timestamp answers another request (nonce differs)"))
        when = info["gen_time"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail(_("the timestamp is not a valid RFC 3161 response: %s") % exc) from None
    return TimestampCheck(when, check.signer, check)


def load_pem_certs(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise _fail(_("not a PEM or DER certificate: %s") % exc) from None


__all__ = ["check_chain", "check_cms", "check_timestamp", "load_pem_certs", "request_timestamp",
           "sign_detached", "timestamp_query"]
