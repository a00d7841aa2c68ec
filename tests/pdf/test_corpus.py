"""The real-world corpus (839 PDFs from PDF.js's test suite): each file either ends signed with a
seal and a riding seam and verifies intact, or is refused at upload with a reason. No crash, no
hang, no signed file that fails verification. The counts go to test-artifacts/corpus-summary.json."""

import json
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import PDF_CORPUS

from portal.crypto import x509
from portal.crypto.sm2 import PrivateKey
from portal.pdf.errors import REASONS, PdfRefused
from portal.pdf.inspect import inspect
from portal.pdf.placement import MM, Placement, SealImage
from portal.pdf.seal_image import official_seal
from portal.pdf.sign import sign_revision, sm2_cms_signer
from portal.pdf.verify import verify_pdf

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(PDF_CORPUS.glob("*.pdf")) if PDF_CORPUS.is_dir() else []
SECONDS_PER_FILE = 60  # far above the slowest file (~0.6 s): only a hang reaches it


@pytest.fixture(scope="module")
def school():
    """A CA, a signer certificate under it, and the school's seal."""
    ca_key, key = PrivateKey.generate(), PrivateKey.generate()
    now = datetime.now(UTC).replace(tzinfo=None)
    validity = {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=30)}
    ca = x509.build_certificate(x509.build_name([("common_name", "Corpus CA")]), ca_key.public_key, ca_key.sign,
                                ca=True, **validity)  # fmt: skip
    signer_cert = x509.build_certificate(x509.build_name([("common_name", "示范大学")]), key.public_key, ca_key.sign,
                                         issuer_certificate=ca, **validity)  # fmt: skip
    seal = SealImage.from_png("school", official_seal("示范大学"))
    return ca, sm2_cms_signer(signer_cert, [ca], key.sign), seal


@pytest.fixture(scope="module")
def outcomes():
    counts = Counter()
    yield counts
    if counts:
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "corpus-summary.json").write_text(json.dumps(dict(sorted(counts.items())), indent=2))


def placements(info, seal):
    """A seal in the middle of page 1 and a riding seam over every page, sized to fit the smallest page."""
    smallest = min(min(p.display_width, p.display_height) for p in info.pages)
    size = min(42 * MM, 0.8 * smallest)
    first = info.pages[0]
    x, y = (first.display_width - size) / 2, (first.display_height - size) / 2
    result = [Placement.single(seal, 1, x, y, size, size)]
    if info.page_count > 1:
        lowest = min(p.display_height for p in info.pages)
        result.append(Placement.riding(seal, "all", (lowest - size) / 2, size, size))
    return result


@pytest.fixture
def deadline():
    def hung(signum, frame):
        raise TimeoutError(f"no result within {SECONDS_PER_FILE} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(SECONDS_PER_FILE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not FILES, reason=f"the corpus is absent ({PDF_CORPUS})")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_real_world_pdf_is_signed_and_verifies_or_is_refused_with_a_reason(path, school, outcomes, deadline):
    ca, signer, seal = school
    data = path.read_bytes()
    try:
        info = inspect(data)
    except PdfRefused as refusal:
        assert refusal.reason in REASONS and refusal.message_zh
        outcomes[f"refused: {refusal.reason}"] += 1
        return
    signed = sign_revision(info.repaired or data, placements(info, seal), signer).data
    ours = verify_pdf(signed, trust_anchors=[ca]).signatures[-1]
    assert ours.valid and ours.intact and ours.covers_whole_file, ours.problems
    assert {s.page for s in ours.seals} == set(range(1, info.page_count + 1))
    outcomes["signed and verified" + (" after repair" if info.repaired else "")] += 1
