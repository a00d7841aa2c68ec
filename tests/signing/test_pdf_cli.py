"""`flask pdf inspect | sign | verify`: what an operator runs against files on disk."""

import json

import pytest
from helpers import PDF_CORPUS

from portal.audit.models import Event
from portal.certificates import services as ca
from portal.certificates.models import Certificate

pytestmark = pytest.mark.both_databases


@pytest.fixture
def paper():
    path = PDF_CORPUS / "tracemonkey.pdf"
    if not path.exists():
        pytest.skip(f"corpus file {path} is absent")
    return path


@pytest.fixture
def pdf(app, demo):
    runner = app.test_cli_runner()

    def run(*args):
        result = runner.invoke(args=["pdf", *map(str, args)])
        return result.exit_code, result.output

    return run


def test_inspect_prints_pages_as_json(pdf, paper):
    code, out = pdf("inspect", paper)
    info = json.loads(out)
    assert code == 0 and info["page_count"] == 14 and info["pages"][0]["rotation"] == 0


def test_a_file_that_is_not_a_pdf_is_refused_with_exit_2(pdf, tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"GIF89a not a pdf")
    code, out = pdf("inspect", tmp_path / "x.pdf")
    assert code == 2 and json.loads(out)["refused"] == "not_pdf"
    code, out = pdf("verify", tmp_path / "x.pdf")
    assert code == 2


def test_an_unsigned_file_does_not_verify(pdf, paper):
    code, out = pdf("verify", paper)
    assert code == 1 and json.loads(out)["summary"] == "文件中没有电子签名"


def test_two_organisations_sign_in_turn_and_both_signatures_verify(pdf, paper, tmp_path):
    first, second = tmp_path / "1.pdf", tmp_path / "2.pdf"
    assert pdf("sign", paper, first, "--org", "jwc", "--x", "400", "--y", "100", "--riding", "all")[0] == 0
    assert pdf("sign", first, second, "--org", "cwc", "--page", "2", "--x", "80", "--multi", "3-5")[0] == 0
    assert second.read_bytes().startswith(first.read_bytes())

    code, out = pdf("verify", second)
    report = json.loads(out)
    assert code == 0 and report["valid"]
    assert [s["signer"]["name"] for s in report["signatures"]] == ["教务处", "财务处"]
    assert report["signatures"][0]["changes_after"]["allowed"]
    assert {s["page"] for s in report["signatures"][0]["seals"]} == set(range(1, 15))  # seal + riding seam
    assert sorted(s["page"] for s in report["signatures"][1]["seals"]) == [2, 3, 4, 5]
    assert Event.select().where(Event.action == "pdf.signed_from_cli").count() == 2


def test_a_changed_byte_fails_verification(pdf, paper, tmp_path):
    signed = tmp_path / "signed.pdf"
    pdf("sign", paper, signed, "--org", "xb")
    data = bytearray(signed.read_bytes())
    data[2000] ^= 0x01
    (tmp_path / "tampered.pdf").write_bytes(bytes(data))
    code, out = pdf("verify", tmp_path / "tampered.pdf")
    assert code == 1 and not json.loads(out)["signatures"][0]["intact"]


def test_a_revoked_organisation_certificate_fails_verification(pdf, paper, tmp_path):
    signed = tmp_path / "signed.pdf"
    pdf("sign", paper, signed, "--org", "xb")
    serial = json.loads(pdf("verify", signed)[1])["signatures"][0]["signer"]["serial"]
    certificate = Certificate.get(Certificate.serial == serial)
    ca.revoke(certificate, "keyCompromise", None)
    code, out = pdf("verify", signed)
    assert code == 1 and json.loads(out)["signatures"][0]["revoked"]


def test_a_file_signed_under_another_ca_is_trusted_only_with_trust(pdf, paper, tmp_path):
    from datetime import UTC, datetime, timedelta

    from portal.crypto import asn1, x509
    from portal.crypto.sm2 import PrivateKey
    from portal.pdf.placement import Placement, SealImage
    from portal.pdf.seal_image import official_seal
    from portal.pdf.sign import sign_revision, sm2_cms_signer

    ca_key, signer_key = PrivateKey.generate(), PrivateKey.generate()
    now = datetime.now(UTC).replace(tzinfo=None)
    validity = {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=30)}
    ca_cert = x509.build_certificate(
        x509.build_name([("common_name", "外部CA")]), ca_key.public_key, ca_key.sign, ca=True, **validity
    )
    signer_cert = x509.build_certificate(
        x509.build_name([("common_name", "外部单位")]), signer_key.public_key, ca_key.sign,
        issuer_certificate=ca_cert, **validity,
    )  # fmt: skip
    seal = SealImage.from_png("ext", official_seal("外部单位"))
    placement = Placement.single(seal, 1, 100, 100, 119, 119)
    signer = sm2_cms_signer(signer_cert, [ca_cert], signer_key.sign)
    (tmp_path / "ext.pdf").write_bytes(sign_revision(paper.read_bytes(), [placement], signer).data)
    (tmp_path / "ca.pem").write_text(asn1.pem(ca_cert, "CERTIFICATE"))
    assert pdf("verify", tmp_path / "ext.pdf")[0] == 1
    assert pdf("verify", tmp_path / "ext.pdf", "--trust", tmp_path / "ca.pem")[0] == 0
