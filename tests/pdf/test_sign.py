"""Signing revisions: what we write, what pdfium draws from it, and what pyHanko makes of it.

Every file written here goes through `qpdf --check`. Seals are checked by rendering with pdfium
(after `init_forms()`, without which it skips widgets) and comparing with the unsigned page:
nothing changes outside the seal's box, and the seal shows inside it, upright. Earlier signatures
are checked three ways: their bytes are a prefix of the final file, their CMS verifies over their
byte range with portal.crypto.cms, and pyHanko's difference analysis rates what came after them as
form filling at most — the check that they stay valid in Adobe Reader too.
"""

import hashlib
import io
import itertools
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as pyca_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from helpers import build_pdf
from PIL import Image, ImageChops, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from portal.crypto import cms, x509
from portal.crypto.sm2 import PrivateKey
from portal.pdf.errors import PdfRefused
from portal.pdf.placement import MM, PageBox, Placement, PlacementError, SealImage, impressions
from portal.pdf.sign import (
    MIN_CONTENTS_SIZE,
    CmsSigner,
    SignError,
    _parse_simple,
    finish_revision,
    prepare_revision,
    pyca_cms_signer,
    sign_revision,
    sm2_cms_signer,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SCALE = 2  # pixels per point when rendering
RED = (220, 0, 0, 255)


# ---------------------------------------------------------------------------------------------
# Test material: PDFs, seals, signers


def make_pdf(
    pages: list[dict],
    *,
    annots: str = "none",
    form: bool = False,
    info: bool = False,
    branch: int = 0,
    inherited: bytes = b"",
) -> bytes:
    """A small PDF written by hand. Each page dict may give media (None: no /MediaBox of its
    own), crop, rotate. annots: "none", "direct" (a link annotation in a direct /Annots array) or
    "indirect" (the array is its own object). form: an AcroForm with one text field on page 1.
    info: /Info and XMP /Metadata. branch: group the pages under intermediate /Pages nodes of
    that many pages. inherited: entries for the root /Pages node (/MediaBox, /Rotate…).
    Page content is grey text and a grey bar, never red."""
    objects: list[bytes] = [b"", b""]  # catalog and page tree, written last

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    groups = [list(range(i, min(i + branch, len(pages)))) for i in range(0, len(pages), branch)] if branch else []
    group_refs = [add(b"") for _ in groups]  # filled in once their pages exist
    parents = {i: ref for ref, group in zip(group_refs, groups, strict=True) for i in group}
    kids, field_ref = [], None
    for number, page in enumerate(pages, 1):
        media = page.get("media", (0, 0, 595, 842))
        x0, y0 = media[:2] if media else (0, 0)
        content = b"0.5 g %g %g 100 20 re f BT /F1 20 Tf %g %g Td (Page %d) Tj ET" % (
            x0 + 40,
            y0 + 40,
            x0 + 60,
            y0 + 400,
            number,
        )
        content_ref = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        extra = b""
        if "crop" in page:
            extra += b" /CropBox [%g %g %g %g]" % tuple(page["crop"])
        if "rotate" in page:
            extra += b" /Rotate %d" % page["rotate"]
        annot_refs = []
        if annots != "none":
            annot_refs.append(add(b"<< /Type /Annot /Subtype /Link /Rect [10 10 40 40] /Border [0 0 0] >>"))
        if form and number == 1:
            field_ref = add(
                b"<< /FT /Tx /T (name) /V (Zhang San) /Type /Annot /Subtype /Widget /Rect [300 700 500 720] /F 4 >>"
            )
            annot_refs.append(field_ref)
        if annot_refs:
            array = b"[%s]" % b" ".join(b"%d 0 R" % ref for ref in annot_refs)
            extra += b" /Annots " + (array if annots != "indirect" else b"%d 0 R" % add(array))
        if media:
            extra += b" /MediaBox [%g %g %g %g]" % tuple(media)
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /Contents %d 0 R%s /Resources"
                b" << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
                % (parents.get(number - 1, 2), content_ref, extra)
            )
        )
    catalog = b"/Type /Catalog /Pages 2 0 R"
    if form:
        catalog += b" /AcroForm << /Fields [%d 0 R] >>" % field_ref
    trailer = b""
    if info:
        xmp = (
            b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/><?xpacket end="w"?>'
        )
        catalog += b" /Metadata %d 0 R" % add(
            b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream" % (len(xmp), xmp)
        )
        trailer = b" /Info %d 0 R" % add(b"<< /Title (Test) /Producer (hand) >>")
    objects[0] = b"<< %s >>" % catalog
    for ref, group in zip(group_refs, groups, strict=True):
        members = b" ".join(b"%d 0 R" % kids[i] for i in group)
        objects[ref - 1] = b"<< /Type /Pages /Parent 2 0 R /Kids [%s] /Count %d >>" % (members, len(group))
    top = group_refs if branch else kids
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d %s >>" % (
        b" ".join(b"%d 0 R" % k for k in top),
        len(kids),
        inherited,
    )
    return build_pdf(objects, trailer=trailer, header=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")


def seal_png(size: int = 240, colour=RED) -> bytes:
    """A red ring with a filled triangle in its upper-left quarter: a mirrored or turned seal
    puts the triangle elsewhere."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, size - 4, size - 4), outline=colour, width=size // 12)
    draw.polygon([(size * 0.2, size * 0.5), (size * 0.5, size * 0.2), (size * 0.5, size * 0.5)], fill=colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


SEAL = SealImage.from_png("red-seal", seal_png())
BLUE_SEAL = SealImage.from_png("blue-seal", seal_png(200, (0, 0, 220, 255)))


@dataclass
class Party:
    key: PrivateKey
    cert: bytes
    signer: CmsSigner


def sm2_party(name: str) -> Party:
    key = PrivateKey.generate()
    now = datetime.now(UTC).replace(tzinfo=None)
    cert = x509.build_certificate(
        x509.build_name([("country_name", "CN"), ("organization_name", "测试大学"), ("common_name", name)]),
        key.public_key,
        key.sign,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )
    return Party(key, cert, sm2_cms_signer(cert, [], key.sign))


@pytest.fixture(scope="module")
def parties() -> list[Party]:
    return [sm2_party(name) for name in ("张三", "李四", "王五")]


def pyca_party(kind: str):
    """A self-signed RSA or ECDSA certificate with its key, made with `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else rsa.generate_private_key(65537, 2048)
    name = pyca_x509.Name([pyca_x509.NameAttribute(NameOID.COMMON_NAME, f"interop {kind}")])
    now = datetime.now(UTC)
    usage = pyca_x509.KeyUsage(True, True, False, False, False, True, False, False, False)
    cert = (
        pyca_x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(pyca_x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(pyca_x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------
# Checking what we wrote


def qpdf_check(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(data)
        file.flush()
        result = subprocess.run(["qpdf", "--check", file.name], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors" in result.stdout


def sign_checked(pdf: bytes, placements, signer, **kwargs):
    """sign_revision, then what every file we write must pass: it starts with the input bytes
    exactly, and qpdf finds nothing wrong with it."""
    revision = sign_revision(pdf, placements, signer, **kwargs)
    assert revision.data.startswith(pdf)
    qpdf_check(revision.data)
    return revision


def render(data: bytes, page_numbers=None) -> dict[int, Image.Image]:
    pdf = pdfium.PdfDocument(data)
    pdf.init_forms()  # pdfium draws widget annotations only with forms initialised
    numbers = page_numbers or range(1, len(pdf) + 1)
    try:
        return {n: pdf[n - 1].render(scale=SCALE, may_draw_forms=True).to_pil().convert("RGB") for n in numbers}
    finally:
        pdf.close()


def mask(image: Image.Image, colour: str = "red") -> Image.Image:
    """255 where the pixel is clearly red (or blue), 0 elsewhere."""
    r, g, b = image.split()
    strong, weak = (r, b) if colour == "red" else (b, r)

    def above(channel):
        return channel.point(lambda v: 255 if v > 150 else 0)

    def below(channel):
        return channel.point(lambda v: 255 if v < 110 else 0)

    return ImageChops.multiply(ImageChops.multiply(above(strong), below(g)), below(weak))


def changed(before: Image.Image, after: Image.Image) -> Image.Image:
    return ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 24 else 0)


def pixel_box(visible_rect, page_height: float) -> tuple[int, int, int, int]:
    x, y, w, h = visible_rect
    return (
        round(x * SCALE),
        round((page_height - y - h) * SCALE),
        round((x + w) * SCALE),
        round((page_height - y) * SCALE),
    )


def inside(bbox, box, slack: int = 2) -> bool:
    return (
        bbox[0] >= box[0] - slack
        and bbox[1] >= box[1] - slack
        and bbox[2] <= box[2] + slack
        and bbox[3] <= box[3] + slack
    )


def count(image: Image.Image) -> int:
    return image.histogram()[255]


def assert_seal_drawn(before: Image.Image, after: Image.Image, visible_rect, colour: str = "red") -> None:
    """The page changed only inside the box, and the box shows an upright seal: more of the
    colour in its upper-left quarter (the triangle) than in its lower-right."""
    page_height = after.height / SCALE
    box = pixel_box(visible_rect, page_height)
    difference = changed(before, after).getbbox()
    assert difference is not None, "the seal was not drawn"
    assert inside(difference, box), f"page changed at {difference}, outside the seal's box {box}"
    seal = mask(after, colour).crop(box)
    assert count(seal) > 0.08 * seal.width * seal.height
    half_w, half_h = seal.width // 2, seal.height // 2
    upper_left = count(seal.crop((0, 0, half_w, half_h)))
    lower_right = count(seal.crop((half_w, half_h, seal.width, seal.height)))
    assert upper_left > 1.5 * lower_right, "the seal is turned or mirrored"


def signatures(data: bytes):
    """pyHanko's view: every embedded signature with its integrity computed."""
    reader = PdfFileReader(io.BytesIO(data))
    found = reader.embedded_signatures
    for signature in found:
        signature.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)
    return found


def assert_earlier_signatures_hold(data: bytes, revisions: list) -> None:
    """Every signature verifies over its byte range, earlier ones are byte-identical prefixes,
    and pyHanko rates what came after each earlier one as form filling at most."""
    found = signatures(data)
    assert [tuple(s.byte_range) for s in found] == [r.byte_range for r in revisions]
    for index, (signature, revision) in enumerate(zip(found, revisions, strict=True)):
        start, length1, start2, length2 = revision.byte_range
        assert data.startswith(revision.data[: start2 + length2])
        digest = hashlib.new("sm3", data[start:length1] + data[start2 : start2 + length2]).digest()
        assert digest == revision.digest
        contents = bytes(signature.sig_object["/Contents"])
        result = cms.verify(contents, digest=digest)
        assert result.ok, result.reason
        assert isinstance(signature.diff_result, DiffResult), signature.diff_result
        if index == len(found) - 1:
            assert signature.coverage == SignatureCoverageLevel.ENTIRE_FILE
        else:
            assert signature.coverage == SignatureCoverageLevel.ENTIRE_REVISION
            assert signature.diff_result.modification_level <= ModificationLevel.FORM_FILLING


def new_revision_objects(data: bytes) -> dict:
    """The objects written in the file's last revision, by reference."""
    reader = PdfFileReader(io.BytesIO(data))
    revision = reader.xrefs.total_revisions - 1
    return {ref: reader.get_object(ref) for ref in reader.xrefs.explicit_refs_in_revision(revision)}


def box_of(data: bytes, page: int) -> PageBox:
    """The page's box as pyHanko's reader finds it, inherited attributes looked up through
    /Parent (independently of how sign.py does it)."""
    reader = PdfFileReader(io.BytesIO(data))
    page_ref, _ = reader.find_page_for_modification(page - 1)

    def attribute(key):
        node = page_ref.get_object()
        while key not in node and "/Parent" in node:
            node = node["/Parent"]
        return node.get(key)

    crop = attribute("/CropBox")
    return PageBox.from_boxes(
        [float(v) for v in attribute("/MediaBox")],
        [float(v) for v in crop] if crop is not None else None,
        attribute("/Rotate") or 0,
    )


# ---------------------------------------------------------------------------------------------
# The revision itself


def test_signed_file_appends_one_revision(parties):
    pdf = make_pdf([{}, {}, {}])
    placements = [Placement.single(SEAL, 1, 100, 100, 120, 120), Placement.multi_page(SEAL, "2-3", 300, 500, 80, 80)]
    signed = sign_checked(pdf, placements, parties[0].signer, reason="同意", location="北京", name="张三")
    data = signed.data

    start, length1, start2, length2 = signed.byte_range
    assert start == 0 and start2 + length2 == len(data)
    assert data[length1 : length1 + 1] == b"<" and data[start2 - 1 : start2] == b">"
    assert start2 - length1 - 2 >= MIN_CONTENTS_SIZE
    digest = hashlib.new("sm3")
    for offset, length in ((start, length1), (start2, length2)):  # stream the two ranges
        digest.update(memoryview(data)[offset : offset + length])
    assert digest.digest() == signed.digest

    reader = PdfFileReader(io.BytesIO(data))
    form = reader.root["/AcroForm"]
    assert form["/SigFlags"] == 3
    (field,) = [f.get_object() for f in form["/Fields"]]
    assert field["/FT"] == "/Sig" and field["/T"] == signed.field_name == "Signature1"
    sig = field["/V"]
    assert sig["/Type"] == "/Sig" and sig["/Filter"] == "/Adobe.PPKLite"
    assert sig["/SubFilter"] == "/adbe.pkcs7.detached"
    assert list(sig["/ByteRange"]) == list(signed.byte_range)
    assert sig["/Reason"] == "同意" and sig["/Location"] == "北京" and sig["/Name"] == "张三"
    assert str(sig["/M"]).startswith("D:20")

    widgets = [kid.get_object() for kid in field["/Kids"]]
    assert len(widgets) == 3  # one per impression
    for widget, page in zip(widgets, (1, 2, 3), strict=True):
        assert widget["/Subtype"] == "/Widget" and widget["/F"] == 4
        assert widget["/Parent"].get_object() is field
        page_ref, _ = reader.find_page_for_modification(page - 1)
        assert widget.raw_get("/P").reference == page_ref.reference
        assert any(a.reference == widget.container_ref for a in page_ref.get_object().raw_get("/Annots"))
        assert "/N" in widget["/AP"]
    result = cms.verify(bytes(sig["/Contents"]), digest=signed.digest)
    assert result.ok and result.signing_time is not None


def test_three_parties_sign_in_turn(parties):
    """Each signer adds its own seals; every signature verifies over its byte range and the
    earlier ones survive pyHanko's difference analysis at form filling."""
    data = make_pdf([{}, {"rotate": 90}, {}, {}])
    revisions = []
    plans = [
        [Placement.single(SEAL, 1, 60, 60, 100, 100)],
        [Placement.multi_page(BLUE_SEAL, "all", 300, 300, 70, 70), Placement.riding(SEAL, "all", 300, 120, 120)],
        [Placement.single(SEAL, 4, 400, 100, 100, 100), Placement.single(BLUE_SEAL, 2, 40, 40, 60, 60)],
    ]
    for party, placements in zip(parties, plans, strict=True):
        revision = sign_checked(data, placements, party.signer)
        data = revision.data
        revisions.append(revision)
    assert [r.field_name for r in revisions] == ["Signature1", "Signature2", "Signature3"]
    assert_earlier_signatures_hold(data, revisions)
    # Each signer's certificate is in its own signature.
    for signature, party in zip(signatures(data), parties, strict=True):
        assert signature.signer_cert.dump() == party.cert


@pytest.mark.parametrize("annots", ["none", "direct", "indirect"])
@pytest.mark.parametrize("form", [False, True], ids=["no-form", "existing-form"])
def test_every_way_of_adding_widgets_to_pages_is_form_filling(parties, annots, form):
    """Pages without /Annots, with a direct array (the page dictionary is rewritten) and with an
    indirect one (only the array is); documents with and without a form already."""
    data = make_pdf([{}, {}], annots=annots, form=form)
    revisions = []
    for party, page in zip(parties[:2], (1, 2), strict=True):
        revisions.append(sign_checked(data, [Placement.multi_page(SEAL, f"{page}-2", 100, 100, 90, 90)], party.signer))
        data = revisions[-1].data
    assert_earlier_signatures_hold(data, revisions)
    if annots == "indirect":
        written = new_revision_objects(data)
        pages = [
            obj for obj in written.values() if isinstance(obj, generic.DictionaryObject) and obj.get("/Type") == "/Page"
        ]
        assert not pages, "an indirect /Annots array is updated without rewriting the page"


def test_invisible_signature(parties):
    first = sign_checked(make_pdf([{}]), [Placement.single(SEAL, 1, 100, 100, 90, 90)], parties[0].signer)
    second = sign_checked(first.data, [], parties[1].signer)
    assert_earlier_signatures_hold(second.data, [first, second])
    reader = PdfFileReader(io.BytesIO(second.data))
    field = reader.root["/AcroForm"]["/Fields"][1].get_object()
    (widget,) = [kid.get_object() for kid in field["/Kids"]]
    assert [float(v) for v in widget["/Rect"]] == [0, 0, 0, 0] and "/AP" not in widget


def test_one_image_xobject_per_seal(parties):
    pdf = make_pdf([{}] * 5)
    placements = [
        Placement.multi_page(SEAL, "all", 100, 100, 80, 80),
        Placement.riding(SEAL, "all", 400, 100, 100),
        Placement.multi_page(BLUE_SEAL, "1,3", 300, 300, 60, 60),
    ]
    signed = sign_checked(pdf, placements, parties[0].signer)
    written = new_revision_objects(signed.data)
    streams = [obj for obj in written.values() if isinstance(obj, generic.StreamObject)]
    images = [s for s in streams if s.get("/Subtype") == "/Image"]
    masks = {s.raw_get("/SMask").reference for s in images if "/SMask" in s}
    seals = [s for s in images if s.container_ref not in masks]
    assert len(seals) == 2 and len(masks) == 2
    assert all(s["/Filter"] == "/FlateDecode" for s in images)
    forms = [s for s in streams if s.get("/Subtype") == "/Form"]
    assert len(forms) == len(impressions(placements, [PageBox.from_boxes((0, 0, 595, 842))] * 5)) == 12
    used = {form["/Resources"]["/XObject"].raw_get("/Seal").reference for form in forms}
    assert used == {s.container_ref for s in seals}


def test_metadata_catalog_and_content_are_left_alone(parties):
    """The revision adds the signature and nothing else: /Info, XMP metadata, page content
    and the catalog's other entries (/Version included) stay as they were. The first signature
    adds /AcroForm to the catalog; later ones leave the catalog alone."""
    pdf = make_pdf([{}, {}], info=True)
    original = PdfFileReader(io.BytesIO(pdf)).root
    data = pdf
    for party in parties[:2]:
        data = sign_checked(data, [Placement.riding(SEAL, "all", 300, 100, 100)], party.signer).data
        reader = PdfFileReader(io.BytesIO(data))
        refs = set(new_revision_objects(data))
        assert reader.trailer.raw_get("/Info").reference not in refs
        assert reader.root.raw_get("/Metadata").reference not in refs
        assert {k: v for k, v in reader.root.items() if k != "/AcroForm"} == dict(original)
        for page_number in (1, 2):
            page_ref, _ = reader.find_page_for_modification(page_number - 1)
            assert page_ref.get_object().raw_get("/Contents").reference not in refs
    assert reader.root.container_ref not in refs  # the second revision did not touch the catalog


# ---------------------------------------------------------------------------------------------
# Where the seals show


ROTATED_PAGES = [
    {},
    {"rotate": 90},
    {"rotate": 180},
    {"rotate": 270},
    {"crop": (50, 80, 500, 760)},
    {"rotate": 90, "crop": (50, 80, 500, 760)},
    {"rotate": 270, "media": (-100, 40, 495, 882), "crop": (-60, 100, 400, 800)},
]


@pytest.mark.parametrize("page", ROTATED_PAGES, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()) or "plain")
def test_seal_shows_where_it_was_placed(parties, page):
    pdf = make_pdf([page])
    rect = (150, 200, 110, 110)
    signed = sign_checked(pdf, [Placement.single(SEAL, 1, *rect)], parties[0].signer)
    before, after = render(pdf)[1], render(signed.data)[1]
    assert after.size == before.size
    assert_seal_drawn(before, after, rect)


def test_multi_page_range_stamps_exactly_those_pages(parties):
    pdf = make_pdf([{}, {"rotate": 90}, {}, {"rotate": 180}, {}, {}, {"rotate": 270}, {}])
    rect = (200, 300, 90, 90)
    signed = sign_checked(pdf, [Placement.multi_page(SEAL, "1-3,7", *rect)], parties[0].signer)
    before, after = render(pdf), render(signed.data)
    for number in range(1, 9):
        if number in (1, 2, 3, 7):
            assert_seal_drawn(before[number], after[number], rect)
        else:
            assert changed(before[number], after[number]).getbbox() is None, f"page {number} changed"


def test_nested_page_tree_and_inherited_boxes(parties):
    """Pages under intermediate /Pages nodes, inheriting /MediaBox and /Rotate from the root:
    each seal goes to the page asked for, placed on the page as it is displayed."""
    pages = [{"media": None}] * 7 + [{"media": None, "rotate": 0}]
    pdf = make_pdf(pages, branch=3, inherited=b"/MediaBox [0 0 500 700] /Rotate 90")
    wanted = {2: (100, 50, 80, 80), 5: (300, 200, 90, 90), 7: (500, 300, 60, 60), 8: (50, 500, 70, 70)}
    placements = [Placement.single(SEAL, page, *rect) for page, rect in wanted.items()]
    signed = sign_checked(pdf, placements, parties[0].signer)
    reader = PdfFileReader(io.BytesIO(signed.data))
    before, after = render(pdf), render(signed.data)
    for number in range(1, 9):
        page_ref, _ = reader.find_page_for_modification(number - 1)  # pyHanko's own page lookup
        annots = page_ref.get_object().get("/Annots", [])
        if number not in wanted:
            assert not annots and changed(before[number], after[number]).getbbox() is None
            continue
        (widget,) = [a.get_object() for a in annots]
        box = box_of(pdf, number)
        assert box.rotate == (0 if number == 8 else 90) and box.crop == (0, 0, 500, 700)
        assert [float(v) for v in widget["/Rect"]] == pytest.approx(box.to_user_rect(*wanted[number]))
        assert_seal_drawn(before[number], after[number], wanted[number])


def reference_seal(parties, width: float, height: float) -> Image.Image:
    """The whole seal as pdfium draws it at that size: the mask slices must add up to."""
    rect = (100, 100, width, height)
    signed = sign_checked(make_pdf([{}]), [Placement.single(SEAL, 1, *rect)], parties[0].signer)
    page = render(signed.data)[1]
    return mask(page).crop(pixel_box(rect, page.height / SCALE))


def assert_slices_form_the_seal(slices: list[Image.Image], whole: Image.Image) -> None:
    joined = Image.new("L", (sum(s.width for s in slices), slices[0].height))
    for x, piece in zip(itertools.accumulate([0] + [s.width for s in slices]), slices, strict=False):
        joined.paste(piece, (x, 0))
    assert joined.size == whole.size
    mismatched = count(ImageChops.logical_xor(joined.convert("1"), whole.convert("1")).convert("L"))
    # Anti-aliasing differs along each cut (slice edges fall between pixels); a slice out of
    # place or mirrored would mismatch a large part of the seal instead.
    allowed = 0.03 * count(whole) + (len(slices) - 1) * whole.height / 4
    assert mismatched <= allowed, f"{mismatched} of {count(whole)} seal pixels differ"


@pytest.mark.parametrize("edge", ["right", "left"])
def test_riding_seam_slices_form_the_seal(parties, edge):
    """Four pages, each with a quarter of a 120 pt seal flush at the edge, 300 pt up; side by
    side in the fanned order (right edge: page order; left edge: reverse) they are the seal."""
    pages = [{}, {"rotate": 90}, {"crop": (30, 40, 560, 800)}, {"rotate": 270}]
    pdf = make_pdf(pages)
    signed = sign_checked(pdf, [Placement.riding(SEAL, "all", 300, 120, 120, edge=edge)], parties[0].signer)
    before, after = render(pdf), render(signed.data)
    slices = []
    for number in range(1, 5):
        page_width, page_height = box_of(pdf, number).visible_size
        rect = (page_width - 30 if edge == "right" else 0, 300, 30, 120)
        box = pixel_box(rect, page_height)
        difference = changed(before[number], after[number]).getbbox()
        assert difference is not None and inside(difference, box)
        slices.append(mask(after[number]).crop(box))
    if edge == "left":
        slices.reverse()
    assert_slices_form_the_seal(slices, reference_seal(parties, 120, 120))


def test_riding_seam_alternate_pages(parties):
    pdf = make_pdf([{}] * 6)
    signed = sign_checked(pdf, [Placement.riding(SEAL, "all", 300, 120, 120, rule="alternate")], parties[0].signer)
    before, after = render(pdf), render(signed.data)
    slices = []
    for number in range(1, 7):
        difference = changed(before[number], after[number]).getbbox()
        if number % 2 == 0:
            assert difference is None
        else:
            box = pixel_box((595 - 40, 300, 40, 120), 842)
            assert difference is not None and inside(difference, box)
            slices.append(mask(after[number]).crop(box))
    assert_slices_form_the_seal(slices, reference_seal(parties, 120, 120))


def test_long_riding_range_restarts_in_groups(parties):
    """40 pages, a 42 mm seal, 3 mm slices at least: three groups of 14, 13 and 13 pages, each
    carrying a whole seal."""
    size = 42 * MM
    pdf = make_pdf([{"media": (0, 0, 200, 260)}] * 40)
    signed = sign_checked(pdf, [Placement.riding(SEAL, "all", 60, size, size)], parties[0].signer)
    before, after = render(pdf), render(signed.data)
    whole = reference_seal(parties, size, size)
    start = 1
    for group in (14, 13, 13):
        width = size / group
        slices = []
        for number in range(start, start + group):
            box = pixel_box((200 - width, 60, width, size), 260)
            difference = changed(before[number], after[number]).getbbox()
            assert difference is not None and inside(difference, box)
            # Slice edges fall between pixels: take each slice's exact share of the seal's width.
            left = round((number - start) * width * SCALE)
            right = round((number - start + 1) * width * SCALE)
            slices.append(mask(after[number]).crop((box[2] - (right - left), box[1], box[2], box[3])))
        assert_slices_form_the_seal(slices, whole)
        start += group


@pytest.mark.skipif(not (CORPUS / "pdf").is_dir(), reason="the shared PDF corpus is not here")
@pytest.mark.parametrize(
    "name",
    ["hello_world_rotated.pdf", "issue14415.pdf", "pr20043.pdf", "issue16278.pdf", "rotation.pdf", "tracemonkey.pdf"],
)
def test_corpus_files_rotated_cropped_and_real(parties, name):
    """Real files with /Rotate 90, 180, 270, a crop box, mixed rotations, and a 14-page paper:
    the seal lands in the middle of the visible page, twice signed, the first one holds."""
    pdf = (CORPUS / "pdf" / name).read_bytes()
    reader = PdfFileReader(io.BytesIO(pdf))
    page_count = int(reader.root["/Pages"]["/Count"])
    numbers = sorted({1, page_count})
    boxes = {n: box_of(pdf, n) for n in numbers}
    first = sign_checked(
        pdf,
        [
            Placement.single(SEAL, n, b.visible_size[0] / 2 - 40, b.visible_size[1] / 2 - 40, 80, 80)
            for n, b in boxes.items()
        ],
        parties[0].signer,
    )
    second = sign_checked(first.data, [Placement.riding(BLUE_SEAL, "all", 100, 60, 60)], parties[1].signer)
    assert_earlier_signatures_hold(second.data, [first, second])
    before, after = render(pdf, numbers), render(first.data, numbers)
    for n, box in boxes.items():
        rect = (box.visible_size[0] / 2 - 40, box.visible_size[1] / 2 - 40, 80, 80)
        assert_seal_drawn(before[n], after[n], rect)


@pytest.mark.skipif(not (CORPUS / "pyhanko" / "pdf").is_dir(), reason="the shared pyHanko corpus is not here")
@pytest.mark.parametrize(
    "name", ["minimal-two-fields-signed-twice.pdf", "pades-lta-dss-indirect-arrs-test.pdf", "sig-with-ski-sid.pdf"]
)
def test_signatures_made_elsewhere_stay_valid(parties, name):
    """Files signed by Acrobat and pyHanko (with empty fields, a DSS, document timestamps):
    our revision comes after their signatures as form filling at most."""
    pdf = (CORPUS / "pyhanko" / "pdf" / name).read_bytes()
    signed = sign_checked(pdf, [Placement.multi_page(SEAL, "all", 20, 20, 60, 60)], parties[0].signer)
    *theirs, ours = signatures(signed.data)
    assert theirs
    for signature in theirs:
        assert isinstance(signature.diff_result, DiffResult)
        assert signature.diff_result.modification_level <= ModificationLevel.FORM_FILLING
    assert ours.coverage == SignatureCoverageLevel.ENTIRE_FILE


@pytest.mark.skipif(not (CORPUS / "pyhanko" / "pdf").is_dir(), reason="the shared pyHanko corpus is not here")
def test_certified_documents_are_not_signed_over(parties):
    """A certification signature (DocMDP) forbids new signature fields with appearances:
    signing would break it, so we refuse instead."""
    pdf = (CORPUS / "pyhanko" / "pdf" / "certified-with-indirect-refs-in-dir.pdf").read_bytes()
    with pytest.raises(SignError, match="认证签名"):
        sign_revision(pdf, [Placement.single(SEAL, 1, 100, 100, 80, 80)], parties[0].signer)


# ---------------------------------------------------------------------------------------------
# Interop and the two-step API


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_rsa_and_ecdsa_signers_interoperate(parties, kind):
    key, cert = pyca_party(kind)
    first = sign_checked(make_pdf([{}, {}]), [Placement.single(SEAL, 1, 100, 100, 90, 90)], parties[0].signer)
    second = sign_checked(
        first.data, [Placement.multi_page(BLUE_SEAL, "all", 300, 100, 80, 80)], pyca_cms_signer(key, cert)
    )
    third = sign_checked(second.data, [Placement.single(SEAL, 2, 100, 500, 90, 90)], parties[1].signer)
    found = signatures(third.data)
    assert [tuple(s.byte_range) for s in found] == [first.byte_range, second.byte_range, third.byte_range]
    for signature in found[:2]:
        assert signature.diff_result.modification_level <= ModificationLevel.FORM_FILLING

    trust = ValidationContext(trust_roots=[asn1_x509.Certificate.load(cert)], allow_fetching=False)
    status = validate_pdf_signature(found[1], trust)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.docmdp_ok and status.bottom_line
    _, length1, start2, length2 = second.byte_range
    assert second.digest == hashlib.sha256(second.data[:length1] + second.data[start2 : start2 + length2]).digest()
    contents = bytes(found[1].sig_object["/Contents"])
    assert cms.verify(contents, digest=second.digest).ok


def test_prepare_then_finish_as_the_cosign_flow_does(parties):
    """The digest leaves, the signed attributes are co-signed elsewhere, the CMS comes back."""
    party = parties[2]
    pdf = make_pdf([{}, {}])
    prepared = prepare_revision(pdf, [Placement.single(SEAL, 2, 100, 100, 90, 90)], reason="会签")
    assert prepared.data.startswith(pdf)
    start, length1, start2, length2 = prepared.byte_range
    assert prepared.data[length1 + 1 : start2 - 1] == b"0" * (start2 - length1 - 2)
    assert prepared.contents_capacity == MIN_CONTENTS_SIZE // 2
    assert prepared.digest == hashlib.new("sm3", prepared.data[:length1] + prepared.data[start2:]).digest()

    attrs = cms.prepare_signed_attrs(digest=prepared.digest, signing_time=prepared.signing_time)
    signature = party.key.sign(attrs)  # in production: the phone and the server, in turns
    data = finish_revision(prepared, cms.assemble(attrs, signature, party.cert))
    assert len(data) == len(prepared.data)
    assert data[:length1] == prepared.data[:length1] and data[start2:] == prepared.data[start2:]
    qpdf_check(data)
    (found,) = signatures(data)
    assert found.coverage == SignatureCoverageLevel.ENTIRE_FILE and tuple(found.byte_range) == prepared.byte_range
    result = cms.verify(bytes(found.sig_object["/Contents"]), digest=prepared.digest)
    assert result.ok
    assert result.signing_time == prepared.signing_time.replace(tzinfo=None)


def test_finish_refuses_a_cms_for_another_document_or_too_large(parties):
    party = parties[0]
    prepared = prepare_revision(make_pdf([{}]), [])
    other = cms.sign_detached(party.cert, party.key.sign, digest=bytes(32))
    with pytest.raises(SignError, match="不符"):
        finish_revision(prepared, other)
    with pytest.raises(SignError, match="不符"):
        finish_revision(prepared, b"\x30\x03\x02\x01\x01")
    right = cms.sign_detached(party.cert, party.key.sign, digest=prepared.digest)
    with pytest.raises(SignError, match="超出预留空间"):
        finish_revision(prepared, right + bytes(prepared.contents_capacity))


def test_placeholder_is_sized_from_the_signer(parties):
    party = parties[0]
    big = CmsSigner(sign=party.signer.sign, max_size=12_000)
    signed = sign_checked(make_pdf([{}]), [], big)
    assert signed.byte_range[2] - signed.byte_range[1] - 2 == 24_000
    small = sign_checked(make_pdf([{}]), [], party.signer, contents_size=100)
    assert small.byte_range[2] - small.byte_range[1] - 2 == MIN_CONTENTS_SIZE


def test_signer_is_called_once_with_the_digest_and_time(parties):
    calls = []

    def sign(digest, signing_time):
        calls.append((digest, signing_time))
        return parties[0].signer.sign(digest, signing_time)

    when = datetime(2025, 6, 1, 8, 30, 15, 999, tzinfo=UTC)
    signed = sign_checked(make_pdf([{}]), [], CmsSigner(sign=sign), signing_time=when)
    assert calls == [(signed.digest, when.replace(microsecond=0))]
    sig = PdfFileReader(io.BytesIO(signed.data)).embedded_signatures[0].sig_object
    assert str(sig["/M"]) == "D:20250601083015Z"  # pyHanko's pdf_date for UTC


# ---------------------------------------------------------------------------------------------
# Refusals


def test_files_that_cannot_be_signed_are_refused(parties):
    signer = parties[0].signer
    with pytest.raises(PdfRefused) as refused:
        sign_revision(b"hello, not a pdf", [], signer)
    assert refused.value.reason == "not_pdf"
    with pytest.raises(PdfRefused) as refused:
        sign_revision(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", [], signer)
    assert refused.value.reason == "damaged"

    writer = PdfFileWriter()
    writer.encrypt(b"owner", b"user")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    with pytest.raises(PdfRefused) as refused:
        sign_revision(encrypted.getvalue(), [], signer)
    assert refused.value.reason == "encrypted" and "加密" in refused.value.message_zh


def test_requests_that_cannot_be_honoured_are_refused(parties):
    signer = parties[0].signer
    pdf = make_pdf([{}, {}])
    with pytest.raises(PlacementError, match="超出范围"):
        sign_revision(pdf, [Placement.single(SEAL, 3, 100, 100, 50, 50)], signer)
    with pytest.raises(PlacementError, match="超出了页面范围"):
        sign_revision(pdf, [Placement.single(SEAL, 1, 580, 100, 50, 50)], signer)
    impostor = SealImage.from_png(SEAL.key, BLUE_SEAL.png)
    with pytest.raises(PlacementError, match="同一个标识"):
        sign_revision(
            pdf, [Placement.single(SEAL, 1, 0, 0, 50, 50), Placement.single(impostor, 2, 0, 0, 50, 50)], signer
        )
    signed = sign_checked(pdf, [], signer, field_name="甲方签名")
    with pytest.raises(SignError, match="已存在"):
        sign_revision(signed.data, [], signer, field_name="甲方签名")
    with pytest.raises(SignError, match="不能为空"):
        sign_revision(pdf, [], signer, field_name="a.b")


def _same_object(ours, theirs) -> bool:
    """Same types, values, order and container_ref all the way down (references by id)."""
    if type(ours) is not type(theirs) or ours.container_ref != theirs.container_ref:
        return False
    if isinstance(ours, generic.DictionaryObject):
        return list(ours) == list(theirs) and all(
            k1.container_ref is k2.container_ref is None and _same_object(ours.raw_get(k1), theirs.raw_get(k2))
            for k1, k2 in zip(ours, theirs, strict=True)
        )
    if isinstance(ours, generic.ArrayObject):
        return len(ours) == len(theirs) and all(map(_same_object, ours.iterate(), theirs.iterate()))
    if isinstance(ours, generic.IndirectObject):
        return ours.reference == theirs.reference and ours.get_pdf_handler() is theirs.get_pdf_handler()
    if isinstance(ours, generic.BooleanObject):
        return ours.value is theirs.value
    if isinstance(ours, generic.NullObject):
        return True
    return ours == theirs and str(ours) == str(theirs)


@pytest.mark.parametrize(
    "body",
    [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 612 792 ] /Rotate -90 /UserUnit 1.5 >>",
        b"<</Type/Page/Kids[3 0 R 4 0 R]/Count 2/CropBox[.5 -1. +2 3.25]/X true/Y false/Z null>>",
        b"<<\r\n/A << /B [ [ 1 ] << >> ] >>\x0c/C []\t>>",
        b"[ 1 0 R 2 ]",
        b"<< /Annots [ 5 0 R ] /Empty / >>",
        # Left to pyHanko: strings, escaped names, comments, odd whitespace, a stream, a duplicate
        # key, an over-long reference, object 0.
        b"<< /T (a string) >>",
        b"<< /T <ABCD> >>",
        b"<< /A#20B 1 >>",
        b"<< /A 1 % comment\n>>",
        b"<< /A\x001 >>",
        b"<< /A 1\x0b0 R >>",
        b"<< /Length 1 >>\nstream\nx\nendstream",
        b"<< /A 1 /A 2 >>",
        b"<< /A 1234567890123456 0 R >>",
        b"<< /A 0 0 R >>",
        b"<< /A 1.2.3 >>",
    ],
)
def test_plain_objects_are_read_as_pyhanko_reads_them(body):
    """The page-tree fast path (`sign._parse_simple`) builds exactly pyHanko's objects, or
    leaves the object to pyHanko."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
    objects += [b"<< /Type /Page /Parent 2 0 R >>", b"null", b"null", b"null", body]
    reader = PdfFileReader(io.BytesIO(pdf := build_pdf(objects)), strict=False)
    ref = generic.Reference(7, 0, reader)
    ours = _parse_simple(pdf, reader.xrefs[ref], ref)
    left = (b"(", b"<A", b"#", b"%", b"\x00", b"\x0b", b"stream", b"/A 1 /A", b"12345", b"0 0 R", b"2.3")
    assert (ours is None) == any(s in body for s in left)
    if ours is not None:
        assert _same_object(ours, reader.get_object(ref))
