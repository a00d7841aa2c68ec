"""PDF signature verification: files signed here by pyHanko (RSA, ECDSA, and SM2 through a custom
signer, so the SM2 path does not depend on our own signer), tampered with in the ways that matter,
checked against trust anchors, CRLs and the revocation callback; pyHanko's own test vectors with
the outcomes its test suite expects; our signer's multi-signer files; hostile input."""

import hashlib
import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as pyca_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from portal.crypto import x509
from portal.crypto.sm2 import PrivateKey
from portal.crypto.sm3 import sm3
from portal.pdf.errors import PdfRefused
from portal.pdf.verify import RevocationStatus, extract_revision, verify_pdf

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "pyhanko"
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


# ---------------------------------------------------------------------------------------------
# Building inputs


def simple_pdf(pages: int = 2) -> bytes:
    """A plain PDF, one text line per page in its own uncompressed content stream."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for number in range(1, pages + 1):
        content = b"BT /F1 12 Tf 72 720 Td (Page %d of the test document) Tj ET" % number
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >>"
            b" /Contents %d 0 R >>" % len(objects)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), pages)
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def seal_png(colour=(200, 0, 0, 255)) -> Image.Image:
    """A red disc on a transparent square, like a seal picture."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    for x in range(96):
        for y in range(96):
            if (x - 48) ** 2 + (y - 48) ** 2 < 44**2:
                image.putpixel((x, y), colour)
    return image


@dataclass
class Identity:
    """A signer: its key (for `cryptography`), certificate and the chain to embed."""

    key: object
    cert: bytes
    chain: list[bytes]

    @property
    def serial(self) -> int:
        return asn1_x509.Certificate.load(self.cert).serial_number


def _name(cn: str, org: str | None = None) -> pyca_x509.Name:
    attributes = [pyca_x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if org:
        attributes.append(pyca_x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return pyca_x509.Name([*attributes, pyca_x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject, key, issuer_name, issuer_key, *, ca: bool, not_after=None) -> bytes:
    builder = (
        pyca_x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(pyca_x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(pyca_x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(pyca_x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:  # keyCertSign + cRLSign
        usage = pyca_x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:  # digitalSignature + nonRepudiation, as the portal's signing certificates
        usage = pyca_x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class PKI:
    root: bytes
    root_key: object
    intermediate: bytes
    intermediate_key: object
    signers: dict[str, Identity]
    other_root: bytes


@pytest.fixture(scope="module")
def pki() -> PKI:
    """An ECDSA root, an RSA intermediate (so both link types are checked), an RSA and an ECDSA
    signer under it, and an unrelated root."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Test Root CA", "Test Trust Services")
    root = issue(root_name, root_key, root_name, root_key, ca=True)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    inter_name = _name("Test Issuing CA", "Test Trust Services")
    intermediate = issue(inter_name, inter_key, root_name, root_key, ca=True)
    identities = {}
    for kind, key in [
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ecdsa", ec.generate_private_key(ec.SECP256R1())),
    ]:
        cert = issue(_name(f"张伟 {kind}", "示范大学"), key, inter_name, inter_key, ca=False)
        identities[kind] = Identity(key, cert, [intermediate, root])
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = _name("Somebody Else's Root")
    other_root = issue(other_name, other_key, other_name, other_key, ca=True)
    return PKI(root, root_key, intermediate, inter_key, identities, other_root)


class SM2Signer(Signer):
    """pyHanko's CMS builder with an SM2 key (crypto_standards.md §4.6): sm2-with-sm3 over the
    DER SET OF signedAttrs pyHanko lays out. Independent of our own PDF signer."""

    def __init__(self, key: PrivateKey, cert: bytes, chain: list[bytes]):
        super().__init__(
            signing_cert=asn1_x509.Certificate.load(cert),
            cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(c) for c in chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"}),
        )
        self.key = key

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        return self.key.sign(data)


@dataclass
class SM2PKI:
    root: bytes
    root_key: PrivateKey
    signer: bytes
    key: PrivateKey
    other_root: bytes


def sm2_certificate(cn: str, key: PrivateKey, issuer_key: PrivateKey, issuer: bytes | None, ca: bool) -> bytes:
    return x509.build_certificate(
        x509.build_name([("country_name", "CN"), ("organization_name", "示范大学"), ("common_name", cn)]),
        key.public_key,
        issuer_key.sign,
        not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=365),
        issuer_certificate=issuer,
        ca=ca,
    )


@pytest.fixture(scope="module")
def sm2_pki() -> SM2PKI:
    root_key, key, other_key = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    root = sm2_certificate("示范大学根CA", root_key, root_key, None, ca=True)
    signer = sm2_certificate("李娜", key, root_key, root, ca=False)
    other = sm2_certificate("另一个根CA", other_key, other_key, None, ca=True)
    return SM2PKI(root, root_key, signer, key, other)


def pyhanko_signer(identity: Identity) -> signers.SimpleSigner:
    key_der = identity.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(identity.cert),
        signing_key=keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(c) for c in identity.chain]),
    )


def sign(
    pdf: bytes,
    signer: Signer,
    field: str = "Signature1",
    *,
    page: int = 0,
    box=(400, 50, 496, 146),
    image: Image.Image | None = None,
    md: str = "sha256",
    certify: bool = False,
) -> bytes:
    """One more incremental revision with a signature by pyHanko, visible in `box` on `page`
    (0-based); with `image`, the appearance draws it as an image XObject, like a seal."""
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        md_algorithm=md,
        certify=certify,
        docmdp_permissions=MDPPerm.NO_CHANGES if certify else MDPPerm.FILL_FORMS,
    )
    style = TextStampStyle(stamp_text="%(signer)s", background=PdfImage(image)) if image is not None else None
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, stamp_style=style, new_field_spec=fields.SigFieldSpec(field, on_page=page, box=box)
    )
    return pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()


@pytest.fixture(scope="module")
def ecdsa_signed(pki) -> bytes:
    return sign(simple_pdf(2), pyhanko_signer(pki.signers["ecdsa"]), image=seal_png())


def verify(data: bytes, anchors, **kwargs):
    return verify_pdf(data, trust_anchors=anchors, **kwargs)


# ---------------------------------------------------------------------------------------------
# Signatures made by pyHanko, RSA and ECDSA


@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "sha256_rsa"), ("ecdsa", "sha256_ecdsa")])
def test_a_pyhanko_signature_is_valid_when_its_root_is_an_anchor(pki, kind, algorithm):
    data = sign(simple_pdf(), pyhanko_signer(pki.signers[kind]))
    result = verify(data, [pki.root])
    assert result.has_signatures and result.revisions == 2
    (verdict,) = result.signatures
    assert verdict.valid and verdict.intact, verdict.problems
    assert verdict.summary == "签名有效，文件自签署后未被篡改（未能检查证书的吊销状态）"
    assert (verdict.field_name, verdict.kind, verdict.revision) == ("Signature1", "signature", 2)
    assert verdict.byte_range_ok and verdict.covers_whole_file and verdict.coverage == "ENTIRE_FILE"
    assert verdict.byte_range[0] == 0 and verdict.signed_length == len(data)
    assert verdict.digest_ok and verdict.signature_ok
    assert (verdict.digest_algorithm, verdict.signature_algorithm) == ("sha256", algorithm)
    assert verdict.signer.common_name == f"张伟 {kind}" and verdict.signer.organization == "示范大学"
    assert verdict.signer.serial == x509.serial_hex(pki.signers[kind].serial)
    assert verdict.signer.issuer.startswith("CN=Test Issuing CA")
    assert abs(verdict.signing_time - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=5)
    # The path was built from the CMS's certificates up to the anchor, every link checked.
    assert verdict.chain.trusted and verdict.chain.valid_at_signing_time
    assert [c.common_name for c in verdict.chain.path] == [f"张伟 {kind}", "Test Issuing CA", "Test Root CA"]
    assert verdict.changes.level == "NONE" and verdict.changes.allowed
    assert verdict.revocation.status == "unknown"  # no callback, no CRL


def test_the_intermediate_can_be_an_anchor_too(pki, ecdsa_signed):
    (verdict,) = verify(ecdsa_signed, [pki.intermediate]).signatures
    assert verdict.valid
    assert [c.common_name for c in verdict.chain.path] == ["张伟 ecdsa", "Test Issuing CA"]


def test_without_its_root_among_the_anchors_the_signature_is_untrusted(pki, ecdsa_signed):
    (verdict,) = verify(ecdsa_signed, [pki.other_root]).signatures
    assert verdict.intact and not verdict.chain.trusted and not verdict.valid
    assert verdict.summary.startswith("证书链不受信任")
    assert verify(ecdsa_signed, []).signatures[0].chain.trusted is False


def test_a_chain_through_a_certificate_that_is_no_ca_is_not_trusted(pki):
    """A signer certificate issued by another end-entity certificate: the path is refused even
    though every signature in it verifies."""
    rogue = pki.signers["rsa"]
    key = ec.generate_private_key(ec.SECP256R1())
    rogue_name = pyca_x509.load_der_x509_certificate(rogue.cert).subject
    cert = issue(_name("Mallory"), key, rogue_name, rogue.key, ca=False)
    data = sign(simple_pdf(), pyhanko_signer(Identity(key, cert, [rogue.cert, *rogue.chain])))
    (verdict,) = verify(data, [pki.root]).signatures
    assert verdict.intact and not verdict.chain.trusted
    assert "不是 CA 证书" in verdict.summary


def test_a_certificate_expired_at_signing_time_is_reported(pki):
    key = ec.generate_private_key(ec.SECP256R1())
    expired = issue(
        _name("过期的证书"), key, _name("Test Issuing CA", "Test Trust Services"), pki.intermediate_key,
        ca=False, not_after=NOW - timedelta(days=1),
    )  # fmt: skip
    data = sign(simple_pdf(), pyhanko_signer(Identity(key, expired, [pki.intermediate, pki.root])))
    (verdict,) = verify(data, [pki.root]).signatures
    assert verdict.intact and verdict.chain.trusted and not verdict.chain.valid_at_signing_time
    assert not verdict.valid and "签署时证书不在有效期内" in verdict.summary


# ---------------------------------------------------------------------------------------------
# Tampering


def test_a_flipped_byte_inside_the_signed_range_breaks_the_digest(pki, ecdsa_signed):
    position = ecdsa_signed.index(b"Page 1 of the test document")
    tampered = bytearray(ecdsa_signed)
    tampered[position + 5] = ord("7")  # "Page 7": the same length, a different document
    (verdict,) = verify(bytes(tampered), [pki.root]).signatures
    assert not verdict.digest_ok and verdict.signature_ok and not verdict.valid
    assert verdict.summary == "签署的内容已被改动（摘要与签名时不一致）"


def _later_revision(data: bytes, change) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_later_revision_that_changes_a_page_is_tampering(pki, ecdsa_signed):
    def rewrite_page_one(writer):
        page = writer.root["/Pages"]["/Kids"][0]
        stream = page["/Contents"]
        stream._data = b"BT /F1 12 Tf 72 720 Td (We owe you nothing) Tj ET"
        stream._encoded_data = None
        writer.update_container(stream)

    tampered = _later_revision(ecdsa_signed, rewrite_page_one)
    result = verify(tampered, [pki.root])
    (verdict,) = result.signatures
    assert result.revisions == 3 and verdict.revision == 2
    assert verdict.digest_ok and verdict.signature_ok  # the signed bytes themselves are untouched
    assert not verdict.covers_whole_file and verdict.coverage == "ENTIRE_REVISION"
    assert verdict.changes.pages_changed and not verdict.changes.allowed and verdict.changes.level == "OTHER"
    assert not verdict.intact and not verdict.valid
    assert verdict.summary == "文件在签署后被修改（页面内容发生变化）"
    # What was signed can still be shown: the signed revision, byte for byte.
    assert extract_revision(tampered, verdict) == ecdsa_signed


def test_a_later_revision_that_adds_a_page_is_tampering(pki, ecdsa_signed):
    def add_page(writer):
        content = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (Annex) Tj ET"))
        page = generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
                generic.pdf_name("/Contents"): content,
            }
        )
        writer.insert_page(page)

    tampered = _later_revision(ecdsa_signed, add_page)
    (verdict,) = verify(tampered, [pki.root]).signatures
    assert verdict.changes.page_count_changed and not verdict.changes.allowed
    assert not verdict.valid and verdict.summary == "文件在签署后被修改（增加或删除了页面）"


def test_a_later_unsigned_revision_changing_nothing_that_matters_is_allowed(pki, ecdsa_signed):
    def retitle(writer):
        writer.set_info(generic.DictionaryObject({generic.pdf_name("/Title"): generic.TextStringObject("通知")}))

    (verdict,) = verify(_later_revision(ecdsa_signed, retitle), [pki.root]).signatures
    assert verdict.valid and not verdict.covers_whole_file
    assert verdict.changes.level == "LTA_UPDATES" and verdict.changes.allowed


def test_a_second_signature_is_an_allowed_change_and_revisions_extract_exactly(pki, ecdsa_signed):
    twice = sign(ecdsa_signed, pyhanko_signer(pki.signers["rsa"]), "Signature2", page=1, image=seal_png())
    first, second = verify(twice, [pki.root]).signatures
    assert first.valid and second.valid
    assert (first.revision, second.revision) == (2, 3)
    assert first.coverage == "ENTIRE_REVISION" and not first.covers_whole_file
    assert first.changes.level == "FORM_FILLING" and first.changes.allowed
    assert first.summary == "签名有效，签署后仅有允许的修改：追加了 1 个签名（未能检查证书的吊销状态）"
    assert second.covers_whole_file and second.changes.level == "NONE"

    revision = extract_revision(twice, 0)
    assert revision == extract_revision(twice, first) == ecdsa_signed
    assert sm3(revision) == sm3(ecdsa_signed)
    assert hashlib.sha256(revision).digest() == hashlib.sha256(ecdsa_signed).digest()
    assert extract_revision(twice, 1) == twice
    with pytest.raises(IndexError):
        extract_revision(twice, 2)


def test_a_certification_that_allows_no_changes_is_broken_by_a_later_signature(pki):
    certified = sign(simple_pdf(), pyhanko_signer(pki.signers["ecdsa"]), certify=True)
    (alone,) = verify(certified, [pki.root]).signatures
    assert alone.valid

    class Careless(signers.PdfSigner):
        """pyHanko refuses to sign after a "no changes" certification; other tools do not."""

        def _enforce_certification_constraints(self, reader):
            pass

    meta = signers.PdfSignatureMetadata(field_name="Later", md_algorithm="sha256")
    spec = fields.SigFieldSpec("Later", on_page=0, box=(50, 50, 100, 100))
    careless = Careless(meta, signer=pyhanko_signer(pki.signers["rsa"]), new_field_spec=spec)
    out = careless.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(certified)))
    first, second = verify(out.getvalue(), [pki.root]).signatures
    assert second.valid
    assert not first.changes.allowed and not first.valid
    assert first.summary == "文件在签署后被修改（超出了认证签名允许的修改范围）"


# ---------------------------------------------------------------------------------------------
# Revocation


def test_the_callback_reports_a_revoked_certificate(pki, ecdsa_signed):
    signer_serial = pki.signers["ecdsa"].serial
    revoked_at = NOW - timedelta(hours=1)
    asked = []

    def is_revoked(cert):
        asked.append(cert.subject.native["common_name"])
        if cert.serial_number == signer_serial:
            return RevocationStatus(revoked=True, revoked_at=revoked_at, reason="keyCompromise")
        return RevocationStatus(revoked=False)

    (verdict,) = verify(ecdsa_signed, [pki.root], is_revoked=is_revoked).signatures
    assert asked == ["张伟 ecdsa"]  # the first revoked certificate decides
    assert verdict.intact and verdict.chain.trusted and not verdict.valid
    assert verdict.revocation.status == "revoked" and verdict.revocation.source == "callback"
    assert (verdict.revocation.revoked_at, verdict.revocation.reason) == (revoked_at, "keyCompromise")
    assert verdict.summary.startswith("证书已吊销（张伟 ecdsa，吊销时间 ")


def test_the_callback_vouches_for_the_whole_path(pki, ecdsa_signed):
    asked = []

    def is_revoked(cert):
        asked.append(cert.subject.native["common_name"])
        return RevocationStatus(revoked=False)

    (verdict,) = verify(ecdsa_signed, [pki.root], is_revoked=is_revoked).signatures
    assert asked == ["张伟 ecdsa", "Test Issuing CA"]  # everything below the anchor
    assert verdict.valid and verdict.revocation.status == "good"
    assert verdict.summary == "签名有效，文件自签署后未被篡改"


def test_an_error_in_the_callback_is_the_callers_not_the_files(pki, ecdsa_signed):
    def is_revoked(cert):
        raise ConnectionError("database unavailable")

    with pytest.raises(ConnectionError):
        verify(ecdsa_signed, [pki.root], is_revoked=is_revoked)


def pyca_crl(issuer_der: bytes, issuer_key, revoked_serials=(), *, next_update=None) -> bytes:
    issuer = pyca_x509.load_der_x509_certificate(issuer_der)
    builder = (
        pyca_x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - timedelta(hours=2))
        .next_update(next_update or NOW + timedelta(days=7))
    )
    for serial in revoked_serials:
        entry = (
            pyca_x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - timedelta(hours=1))
            .add_extension(pyca_x509.CRLReason(pyca_x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_crl_of_an_imported_ca_reports_a_revoked_certificate(pki, ecdsa_signed):
    serial = pki.signers["ecdsa"].serial
    crls = [pyca_crl(pki.intermediate, pki.intermediate_key, [serial]), pyca_crl(pki.root, pki.root_key)]
    (verdict,) = verify(ecdsa_signed, [pki.root], crls=crls, is_revoked=lambda cert: None).signatures
    assert verdict.revocation.status == "revoked" and verdict.revocation.source == "crl"
    assert verdict.revocation.reason == "key_compromise"
    assert not verdict.valid and verdict.summary.startswith("证书已吊销")


def test_current_crls_without_the_serial_make_the_status_good(pki, ecdsa_signed):
    crls = [pyca_crl(pki.intermediate, pki.intermediate_key, [12345]), pyca_crl(pki.root, pki.root_key)]
    (verdict,) = verify(ecdsa_signed, [pki.root], crls=crls).signatures
    assert verdict.valid and verdict.revocation.status == "good"


@pytest.mark.parametrize("problem", ["forged", "stale", "garbage"])
def test_a_crl_that_cannot_be_relied_on_leaves_the_status_unknown(pki, ecdsa_signed, problem):
    serial = pki.signers["ecdsa"].serial
    if problem == "forged":  # right issuer name, wrong key: it must not count, even to revoke
        crl = pyca_crl(pki.intermediate, rsa.generate_private_key(public_exponent=65537, key_size=2048), [serial])
    elif problem == "stale":
        crl = pyca_crl(pki.intermediate, pki.intermediate_key, next_update=NOW - timedelta(minutes=5))
    else:
        crl = b"not a CRL"
    (verdict,) = verify(ecdsa_signed, [pki.root], crls=[crl, pyca_crl(pki.root, pki.root_key)]).signatures
    assert verdict.revocation.status == "unknown" and verdict.valid


# ---------------------------------------------------------------------------------------------
# SM2, signed by pyHanko with a custom signer


@pytest.fixture(scope="module")
def sm2_signed(sm2_pki) -> bytes:
    signer = SM2Signer(sm2_pki.key, sm2_pki.signer, [sm2_pki.root])
    return sign(simple_pdf(3), signer, page=2, image=seal_png(), md="sm3")


def test_an_sm2_signature_made_by_pyhanko_is_valid(sm2_pki, sm2_signed):
    (verdict,) = verify(sm2_signed, [sm2_pki.root]).signatures
    assert verdict.valid, verdict.problems
    assert (verdict.digest_algorithm, verdict.signature_algorithm) == ("sm3", "sm2_sm3")
    assert verdict.signer.common_name == "李娜" and verdict.signer.organization == "示范大学"
    assert [c.common_name for c in verdict.chain.path] == ["李娜", "示范大学根CA"]


def test_an_sm2_signature_under_another_root_is_untrusted(sm2_pki, sm2_signed):
    (verdict,) = verify(sm2_signed, [sm2_pki.other_root]).signatures
    assert verdict.intact and not verdict.chain.trusted and not verdict.valid


def test_an_sm2_crl_revokes_an_sm2_certificate(sm2_pki, sm2_signed):
    serial = asn1_x509.Certificate.load(sm2_pki.signer).serial_number
    crl = x509.build_crl(
        sm2_pki.root,
        sm2_pki.root_key.sign,
        crl_number=1,
        this_update=NOW - timedelta(hours=1),
        next_update=NOW + timedelta(days=1),
        revoked=[x509.RevokedEntry(serial, NOW - timedelta(minutes=30), "keyCompromise")],
    )
    (verdict,) = verify(sm2_signed, [sm2_pki.root], crls=[crl]).signatures
    assert verdict.revocation.status == "revoked" and verdict.revocation.source == "crl" and not verdict.valid
    empty = x509.build_crl(
        sm2_pki.root, sm2_pki.root_key.sign, crl_number=2, this_update=NOW, next_update=NOW + timedelta(days=1)
    )
    assert verify(sm2_signed, [sm2_pki.root], crls=[empty]).signatures[0].revocation.status == "good"


def test_an_sm2_signature_over_changed_bytes_fails(sm2_pki, sm2_signed):
    tampered = sm2_signed.replace(b"(Page 2 of", b"(Page 9 of")
    (verdict,) = verify(tampered, [sm2_pki.root]).signatures
    assert not verdict.digest_ok and not verdict.valid


# ---------------------------------------------------------------------------------------------
# Seals


def test_the_seal_drawn_by_a_signature_is_reported_with_its_image(sm2_signed):
    (verdict,) = verify(sm2_signed, []).signatures
    (seal,) = verdict.seals
    assert seal.page == 3 and seal.rect == (400.0, 50.0, 496.0, 146.0)
    (image,) = seal.images
    assert (image.width, image.height) == (96, 96) and image.data
    assert image.soft_mask is not None  # the transparency around the seal
    # The reference finds the same image again in the extracted revision.
    revision = extract_revision(sm2_signed, verdict)
    assert f"{image.ref[0]} {image.ref[1]} obj".encode() in revision


def test_an_invisible_signature_has_a_widget_without_images(pki):
    data = sign(simple_pdf(), pyhanko_signer(pki.signers["ecdsa"]), box=None)
    (verdict,) = verify(data, [pki.root]).signatures
    assert [(s.page, s.images) for s in verdict.seals] == [(1, ())]


# ---------------------------------------------------------------------------------------------
# Our own signer: several signers in turn


def test_three_signers_in_turn_with_our_signer(sm2_pki):
    sign_module = pytest.importorskip("portal.pdf.sign")
    placement = pytest.importorskip("portal.pdf.placement")
    png = io.BytesIO()
    seal_png().save(png, "PNG")
    seal = placement.SealImage.from_png("seal", png.getvalue())
    data = simple_pdf(3)
    acts = [
        [placement.Placement.single(seal, 1, 100, 100, 80, 80)],
        [placement.Placement.multi_page(seal, "1-3", 300, 100, 80, 80)],
        [placement.Placement.riding(seal, "1-3", 400, 90, 90)],
    ]
    for number, placements in enumerate(acts, start=1):
        key = PrivateKey.generate()
        cert = sm2_certificate(f"签署人{number}", key, sm2_pki.root_key, sm2_pki.root, ca=False)
        signer = sign_module.sm2_cms_signer(cert, [sm2_pki.root], key.sign)
        data = sign_module.sign_revision(data, placements, signer).data

    result = verify(data, [sm2_pki.root])
    assert result.all_valid and result.summary == "全部 3 个签名有效"
    first, second, third = result.signatures
    assert [v.signer.common_name for v in result.signatures] == ["签署人1", "签署人2", "签署人3"]
    assert first.changes.allowed and first.changes.level == "FORM_FILLING"
    assert "追加了 2 个签名" in first.summary and "追加了 1 个签名" in second.summary
    assert third.covers_whole_file
    assert [s.page for s in first.seals] == [1]
    assert [s.page for s in second.seals] == [1, 2, 3]
    assert [s.page for s in third.seals] == [1, 2, 3]
    # One image XObject per seal, shared by the widgets of one signing act.
    assert len({s.images[0].ref for s in second.seals}) == 1
    assert extract_revision(data, second).startswith(extract_revision(data, first))


# ---------------------------------------------------------------------------------------------
# What is refused, and files without signatures


def test_a_file_without_signatures_gives_an_empty_list():
    result = verify(simple_pdf(), [])
    assert result.signatures == [] and not result.has_signatures and not result.all_valid
    assert result.summary == "文件中没有电子签名"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_pdf"),
        (b"PK\x03\x04 a zip file, not a PDF", "not_pdf"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 100, "damaged"),
    ],
)
def test_what_is_not_a_readable_pdf_is_refused(data, reason):
    with pytest.raises(PdfRefused) as refused:
        verify(data, [])
    assert refused.value.reason == reason and refused.value.message_zh


def test_a_truncated_signed_file_is_refused(pki, ecdsa_signed):
    with pytest.raises(PdfRefused) as refused:
        verify(ecdsa_signed[: len(ecdsa_signed) // 2], [pki.root])
    assert refused.value.reason == "damaged"


def test_mutated_signed_files_give_a_verdict_or_a_refusal(pki, ecdsa_signed):
    """Random byte edits, deletions and insertions: any outcome but an exception of another kind."""
    rng = random.Random(20240601)
    outcomes = set()
    for _ in range(200):
        data = bytearray(ecdsa_signed)
        for _ in range(rng.choice([1, 3, 10])):
            position = rng.randrange(len(data))
            edit = rng.random()
            if edit < 0.5:
                data[position] = rng.randrange(256)
            elif edit < 0.75:
                del data[position]
            else:
                data[position:position] = rng.choice([b"<", b">", b"]", b" 0", b"-1", b"999999999999"])
        try:
            result = verify(bytes(data), [pki.root])
            outcomes.add("valid" if result.all_valid else "not valid")
        except PdfRefused as refused:
            outcomes.add(refused.reason)
    assert {"damaged", "not valid"} <= outcomes


def test_a_trust_anchor_that_is_no_certificate_is_a_configuration_error(ecdsa_signed):
    with pytest.raises(ValueError, match="trust anchor #1"):
        verify(ecdsa_signed, [b"not a certificate"])


# ---------------------------------------------------------------------------------------------
# pyHanko's test vectors


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"pyHanko's vectors are not at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="module")
def testing_ca(corpus) -> list[bytes]:
    return [(corpus / "testing-ca" / "root" / "root.cert.pem").read_bytes()]


# Their signing times run from 2020 to 2023; "now" after all of them, so none is in the future.
CORPUS_NOW = datetime(2024, 1, 1)


def corpus_verdicts(corpus, testing_ca, name):
    return verify((corpus / "pdf" / name).read_bytes(), testing_ca, at=CORPUS_NOW).signatures


def test_base_pdf_holds_an_unfilled_signature_placeholder(corpus, testing_ca):
    """The vectors' README calls base.pdf "one normal signature, intact", but its /Contents is
    all zeros: it is the template the anomalies were made from. Byte range and coverage are
    right (a later revision only updates /Info); there is no CMS to check."""
    (verdict,) = corpus_verdicts(corpus, testing_ca, "coverage-anomalies/base.pdf")
    assert verdict.byte_range_ok and verdict.coverage == "ENTIRE_REVISION" and verdict.changes.allowed
    assert not verdict.valid and verdict.summary == "签名数据缺失或损坏，无法校验"


def test_a_tail_the_signature_does_not_cover_is_reported(corpus, testing_ca):
    (verdict,) = corpus_verdicts(corpus, testing_ca, "coverage-anomalies/tail-uncovered.pdf")
    assert verdict.digest_ok and verdict.signature_ok  # the signed bytes are intact...
    assert not verdict.covers_whole_file and verdict.coverage == "CONTIGUOUS_BLOCK_FROM_START"
    assert not verdict.byte_range_ok and not verdict.valid  # ...but what follows is unaccounted for
    assert "签名没有覆盖到所在版本的末尾" in verdict.summary


@pytest.mark.parametrize("name", ["signature-gap-too-big.pdf", "one-byterange.pdf", "weird-byterange.pdf"])
def test_malformed_byte_ranges_are_not_valid(corpus, testing_ca, name):
    (verdict,) = corpus_verdicts(corpus, testing_ca, f"coverage-anomalies/{name}")
    assert not verdict.byte_range_ok and verdict.coverage == "UNCLEAR" and not verdict.covers_whole_file
    assert not verdict.valid and "ByteRange" in verdict.summary
    with pytest.raises(PdfRefused):
        extract_revision((corpus / "pdf" / "coverage-anomalies" / name).read_bytes(), verdict)


@pytest.mark.parametrize(
    "name",
    [
        "minimal-two-fields-signed-twice.pdf",
        "minimal-signed-twice-second-created.pdf",
        "minimal-signed-twice-both-created.pdf",
        "minimal-signed-twice-no-sig-type.pdf",
        "separate-annots-kids-indir.pdf",
    ],
)
def test_a_second_signature_is_an_allowed_change_for_the_first(corpus, testing_ca, name):
    first, second = corpus_verdicts(corpus, testing_ca, name)
    assert first.intact and first.changes.level == "FORM_FILLING" and first.changes.allowed
    assert "追加了 1 个签名" in first.changes.description
    assert second.intact and second.covers_whole_file


@pytest.mark.parametrize(
    "name",
    [
        "form-update-override-appearance-stream-sneaky.pdf",
        "form-update-override-appearance-stream-ap-indirect-sneaky.pdf",
        "form-update-no-override-appearance-stream-ap-indirect-sneaky.pdf",
        "form-update-ap-indirect-sneaky-trailer.pdf",
        "extensions-indirect-not-all-paths.pdf",
    ],
)
def test_sneaky_updates_after_signing_are_tampering(corpus, testing_ca, name):
    first = corpus_verdicts(corpus, testing_ca, name)[0]
    assert first.digest_ok and first.signature_ok and first.chain.trusted
    assert first.changes.level == "OTHER" and not first.changes.allowed and first.changes.detail
    assert not first.intact and not first.valid
    assert "文件在签署后被修改" in first.summary


@pytest.mark.parametrize(
    "name",
    [
        "form-update-override-appearance-stream.pdf",
        "form-update-override-appearance-stream-ap-indirect.pdf",
        "form-update-no-override-appearance-stream-ap-indirect.pdf",
        "form-update-original-ap-type-wrong.pdf",
        "extensions-direct.pdf",
        "extensions-indirect.pdf",
        "extensions-update-direct.pdf",
        "extensions-update-indirect.pdf",
    ],
)
def test_legitimate_updates_after_signing_are_allowed(corpus, testing_ca, name):
    first = corpus_verdicts(corpus, testing_ca, name)[0]
    assert first.intact and first.chain.trusted
    assert first.changes.level == "FORM_FILLING" and first.changes.allowed
    # Signed by Alice in 2022, after her certificate (2020-2022) had expired: intact, trusted,
    # and still not valid, for that reason alone.
    assert first.problems == (first.chain.problem,) and "签署时证书不在有效期内" in first.summary


@pytest.mark.parametrize(
    "name",
    [
        "certified-with-indirect-refs-in-dir.pdf",
        "pades-with-old-style-signing-cert-attr.pdf",
        "pades-with-old-style-signing-cert-attr-issser.pdf",
        "sig-with-ski-sid.pdf",
    ],
)
def test_single_signatures_under_the_testing_ca_are_valid(corpus, testing_ca, name):
    (verdict,) = corpus_verdicts(corpus, testing_ca, name)
    assert verdict.valid, verdict.problems
    assert verdict.chain.path[-1].common_name == "Root CA"


def test_signatures_timestamps_and_validation_data(corpus, testing_ca):
    signature, timestamp = corpus_verdicts(corpus, testing_ca, "pades-lta-dss-indirect-arrs-test.pdf")
    assert signature.valid and signature.changes.level == "LTA_UPDATES"
    assert "追加了 1 个文档时间戳" in signature.summary
    assert timestamp.kind == "timestamp" and timestamp.valid, timestamp.problems
    assert timestamp.signer.common_name == "Time Stamping Authority"
    assert timestamp.signing_time == datetime(2020, 11, 1)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("sig-no-signed-attrs.pdf", "签名缺少签名属性"),
        ("ed448-shake256-nolen.pdf", "不受支持的算法"),
    ],
)
def test_signatures_we_cannot_judge_say_so(corpus, testing_ca, name, says):
    (verdict,) = corpus_verdicts(corpus, testing_ca, name)
    assert not verdict.valid and says in verdict.summary


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("minimal-aes256.pdf", "encrypted"),
        ("minimal-rc4.pdf", "encrypted"),
        ("minimal-pubkey-aes256.pdf", "encrypted"),
        ("signed-encrypted-pubkey-with-catalog-ref.pdf", "encrypted"),
        ("minimal-startxref-hopeless.pdf", "damaged"),
        ("minimal-illegal-header.pdf", "damaged"),
        ("minimal-with-orphaned-xrefs.pdf", "damaged"),
        ("form-tree-circular-ref-input.pdf", "damaged"),
    ],
)
def test_encrypted_and_damaged_vectors_are_refused(corpus, testing_ca, name, reason):
    with pytest.raises(PdfRefused) as refused:
        corpus_verdicts(corpus, testing_ca, name)
    assert refused.value.reason == reason and refused.value.message_zh


def test_every_vector_gives_a_verdict_or_a_refusal(corpus, testing_ca):
    """No stack trace, no hang, for any of them (circular page and structure trees included).
    The PAdES-LTA files are left to their own test: their CMS embed a CRL of 49,000 entries,
    which takes the CMS parser seconds per signature."""
    outcomes = {}
    for path in sorted((corpus / "pdf").rglob("*.pdf")):
        if path.name.startswith("pades-lta-"):
            continue
        try:
            outcomes[path.name] = len(verify(path.read_bytes(), testing_ca, at=CORPUS_NOW).signatures)
        except PdfRefused as refused:
            outcomes[path.name] = refused.reason
    assert outcomes["circular-page-tree.pdf"] == 0 and outcomes["minimal.pdf"] == 0
    assert sum(isinstance(v, int) and v > 0 for v in outcomes.values()) >= 30
