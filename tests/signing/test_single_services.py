"""单方文件签署 at the service level: uploads and their refusals, Word conversion in a job, the
seals a person may use, placements and their checks, 盖章统计, 立即签署 once only, and the whole
path from placed seals to a signed PDF that verifies, with the organisation seal signed after the
person's confirmation and refused once its grant is revoked."""

import io
import zipfile
from pathlib import Path

import pytest
from helpers import three_page_pdf

from portal import storage
from portal.accounts.models import RealNameStatus, User
from portal.audit.models import Event
from portal.certificates import services as certificates
from portal.cosign import services as cosign
from portal.jobs import JobFailure
from portal.pdf.convert import converter_available
from portal.pdf.placement import MM
from portal.pdf.verify import verify_pdf
from portal.seals.models import Seal, SealGrant
from portal.seals.services import create_personal_seal
from portal.signing import single
from portal.signing.documents import UploadRefused
from portal.signing.models import Document, Placement, SignRequest, Task

pytestmark = pytest.mark.both_databases

WORD = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "word"
A4 = (595.0, 842.0)


# --- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "reason", "words"),
    [
        ("报表.xlsx", b"PK\x03\x04...", "unsupported_type", "只能上传 PDF、Word"),
        ("合同.pdf", b"hello, not a pdf", "not_pdf", "不是 PDF 格式"),
        ("合同.docx", b"plain text", "not_word", "不是 Word 文档"),
        ("空.pdf", b"", "no_pages", "文件是空的"),
    ],
)
def test_a_refused_upload_says_why_in_chinese_and_stores_nothing(person, name, data, reason, words):
    with pytest.raises(UploadRefused) as refused:
        single.start_task(person, [("好的.pdf", three_page_pdf()), (name, data)])
    assert refused.value.reason == reason
    assert words in refused.value.message_zh and f"《{name}》" in refused.value.message_zh
    assert Task.select().count() == 0 and Document.select().count() == 0


def test_a_pdf_upload_makes_a_task_with_the_person_as_its_signer(person, task):
    (document,) = single.task_documents(task)
    assert (task.kind, task.status, task.title, task.initiator_id) == ("single", "draft", "合同", person.id)
    assert document.current_blob == document.original_blob
    assert storage.load(document.original_blob) == three_page_pdf()
    assert (document.page_count, document.page_sizes) == (3, [[*A4, 0]] * 3)
    assert document.conversion_state == "none"
    assert single.participant_of(task).user_id == person.id
    assert single.own_task(person, task.public_id).id == task.id
    with pytest.raises(single.TaskNotFound):
        single.own_task(User.get(User.username == "liuyang"), task.public_id)
    actions = [e.action for e in Event.select().order_by(Event.seq)]
    assert actions[-2:] == ["document.uploaded", "task.created"]


@pytest.mark.skipif(not converter_available(), reason="LibreOffice is not installed")
def test_word_files_convert_in_the_job_or_fail_with_the_reason(person):
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("word/document.xml", "this is not <xml")
    task = single.start_task(
        person, [("表格.docx", (WORD / "tbl-having-tables.docx").read_bytes()), ("坏.docx", broken.getvalue())]
    )
    converted, failed = single.task_documents(task)
    assert converted.conversion_state == "done" and converted.page_count >= 1
    assert storage.load(converted.current_blob).startswith(b"%PDF-")
    assert converted.original_blob != converted.current_blob
    assert failed.conversion_state == "failed" and "损坏" in failed.conversion_error
    assert failed.current_blob is None
    with pytest.raises(single.SigningError, match="转换失败"):
        single.add_placement(person, failed, create_personal_seal(person), page=1, x=10, y=10)


# --- seals and placements ------------------------------------------------------------------------


def test_usable_seals_are_the_persons_own_and_those_granted_to_them(person, personal_seal, department_seal):
    finance = Seal.get(Seal.kind == "finance")
    assert [s.id for s in single.usable_seals(person)] == [personal_seal.id, department_seal.id]
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    assert [s.id for s in single.usable_seals(person)] == [personal_seal.id]
    with pytest.raises(single.SigningError, match=finance.name):
        single.check_seal_usable(person, finance)


def test_placements_are_checked_against_the_pages_and_the_grants(person, document, personal_seal):
    size = personal_seal.width_mm * MM
    row = single.add_placement(person, document, personal_seal, page=2, x=100, y=100)
    assert (row.page, row.width, row.height) == (2, pytest.approx(size), pytest.approx(size))
    with pytest.raises(single.SigningError, match="超出了页面范围"):
        single.move_placement(person, row, x=590, y=100)
    with pytest.raises(single.SigningError, match="文件共 3 页"):
        single.add_placement(person, document, personal_seal, kind="multi_page", page=1, page_range="2-4", x=10, y=10)
    with pytest.raises(single.SigningError, match="无法识别"):
        single.add_placement(person, document, personal_seal, kind="riding", page=1, page_range="一到三", y=10)
    with pytest.raises(single.SigningError, match="文件共 3 页"):
        single.add_placement(person, document, personal_seal, page=4, x=10, y=10)
    school = Seal.get(Seal.kind == "school")
    with pytest.raises(single.SigningError, match=school.name):
        single.add_placement(person, document, school, page=1, x=10, y=10)
    moved = single.move_placement(person, row, x=200, y=300)
    assert (Placement.get_by_id(moved.id).x, Placement.get_by_id(moved.id).y) == (200, 300)
    single.remove_placement(person, row)
    assert Placement.select().count() == 0


def test_statistics_count_impressions_and_一键删除_removes_every_placement(
    person, task, document, personal_seal, department_seal
):
    single.add_placement(person, document, personal_seal, page=1, x=100, y=100)
    single.add_placement(person, document, personal_seal, kind="multi_page", page=1, page_range="1-2", x=300, y=100)
    single.add_placement(person, document, department_seal, kind="riding", page=1, page_range="all", y=400)
    single.add_placement(
        person, document, department_seal, kind="riding", page=1, page_range="all", y=100, riding_rule="alternate"
    )
    counts = {c.seal.id: c.impressions for c in single.seal_statistics(task)}
    assert counts == {personal_seal.id: 3, department_seal.id: 3 + 2}
    assert single.remove_all_placements(person, task) == 4
    assert single.seal_statistics(task) == []


# --- 立即签署 ------------------------------------------------------------------------------------


def test_立即签署_twice_creates_one_sign_request(person, phone, task, document, personal_seal):
    single.add_placement(person, document, personal_seal, page=1, x=100, y=100)
    first = single.request_signature(person, task)
    second = single.request_signature(person, task)
    assert first.id == second.id and SignRequest.select().count() == 1
    (entry,) = first.digests
    assert entry["document"] == document.id and entry["base_blob"] == document.current_blob
    assert storage.load(entry["prepared_blob"]).startswith(three_page_pdf())
    assert Task.get_by_id(task.id).status == "in_progress"
    with pytest.raises(single.SigningError, match="不能再修改"):
        single.add_placement(person, document, personal_seal, page=2, x=100, y=100)


def test_立即签署_needs_a_verified_person_with_a_certificate_and_a_seal(person, phone, task):
    with pytest.raises(single.SigningError, match="请先在文件上放置印章"):
        single.request_signature(person, task)
    other = User.get(User.username == "liuyang")
    other_task = single.start_task(other, [("x.pdf", three_page_pdf())])
    single.add_placement(other, single.task_documents(other_task)[0], create_personal_seal(other), page=1, x=9, y=9)
    with pytest.raises(single.SigningError, match="实名认证"):
        single.request_signature(other, other_task)
    other.real_name_status = RealNameStatus.VERIFIED
    other.save()
    with pytest.raises(single.CertificateRequired):
        single.request_signature(other, other_task)


def test_a_grant_revoked_after_placing_is_refused_at_立即签署_naming_the_seal(
    person, phone, task, document, department_seal
):
    single.add_placement(person, document, department_seal, page=1, x=100, y=100)
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    with pytest.raises(single.SigningError, match=department_seal.name):
        single.request_signature(person, task)
    assert SignRequest.select().count() == 0


# --- the whole path ------------------------------------------------------------------------------


def place_everything(person, document, personal_seal, department_seal):
    return [
        single.add_placement(person, document, personal_seal, page=1, x=100, y=120),
        single.add_placement(person, document, department_seal, page=1, x=300, y=150),
        single.add_placement(person, document, personal_seal, kind="multi_page", page=2, page_range="2-3", x=60, y=60),
        single.add_placement(person, document, department_seal, kind="riding", page=1, page_range="all", y=500),
    ]


def test_the_signed_pdf_verifies_with_every_seal_where_it_was_placed(
    person, phone, task, document, personal_seal, department_seal
):
    personal, department, multi, riding = place_everything(person, document, personal_seal, department_seal)
    request = single.request_signature(person, task)
    assert single.progress(person, task).state == "waiting"
    phone.confirm(request)

    # The phone's confirmation started the job (inline in tests): the PC finds the task done.
    assert Task.get_by_id(task.id).status == "completed"
    assert single.progress(person, task).state == "done"
    task = Task.get_by_id(task.id)
    document = Document.get_by_id(document.id)
    assert task.status == "completed" and document.revision == 2
    assert storage.load(document.original_blob) == three_page_pdf()
    assert {p.status for p in Placement.select()} == {"applied"}

    signed = storage.load(document.current_blob)
    result = verify_pdf(signed, trust_anchors=certificates.trust_anchors(), is_revoked=certificates.revocation_status)
    assert result.all_valid and len(result.signatures) == 2
    mine, school_unit = result.signatures
    assert mine.signer.common_name == "张伟" and school_unit.signer.organization is not None
    assert "教务处" in school_unit.signer.subject
    assert mine.revision < school_unit.revision

    def rects(verdict):
        return sorted((s.page, tuple(round(v, 1) for v in s.rect)) for s in verdict.seals)

    def box(row, page, x=None, width=None):
        x = row.x if x is None else x
        width = row.width if width is None else width
        return (page, tuple(round(v, 1) for v in (x, row.y, x + width, row.y + row.height)))

    assert rects(mine) == sorted([box(personal, 1), box(multi, 2), box(multi, 3)])
    slice_width = riding.width / 3
    seam = [box(riding, page, x=A4[0] - slice_width, width=slice_width) for page in (1, 2, 3)]
    assert rects(school_unit) == sorted([box(department, 1), *seam])

    unlocked = Event.get(Event.action == "seal.org_signature")
    assert unlocked.actor_id == person.id and unlocked.data["seal"] == department_seal.public_id

    # Idempotent: the job again, and 立即签署 again, change nothing.
    single.complete_signing(request.id)
    assert Document.get_by_id(document.id).current_blob == document.current_blob
    with pytest.raises(single.SigningError, match="已签署完成"):
        single.request_signature(person, task)


def test_several_files_are_signed_with_one_confirmation(person, phone, personal_seal, department_seal):
    task = single.start_task(person, [("合同.pdf", three_page_pdf()), ("附件.pdf", three_page_pdf())])
    contract, annex = single.task_documents(task)
    single.add_placement(person, contract, personal_seal, page=1, x=100, y=120)
    single.add_placement(person, annex, department_seal, page=2, x=200, y=300)
    request = single.request_signature(person, task)
    assert [e["label"] for e in request.digests] == ["《合同.pdf》第 1 次签章", "《附件.pdf》第 1 次签章"]
    phone.confirm(request)  # one PIN entry for both files

    assert Task.get_by_id(task.id).status == "completed"
    for document, signers in ((contract, ["张伟"]), (annex, ["张伟", "教务处"])):
        signed = storage.load(Document.get_by_id(document.id).current_blob)
        result = verify_pdf(
            signed, trust_anchors=certificates.trust_anchors(), is_revoked=certificates.revocation_status
        )
        assert result.all_valid
        assert [v.signer.common_name for v in result.signatures] == signers


def test_when_the_job_cannot_start_from_the_phone_the_pc_starts_it(
    person, phone, task, document, personal_seal, monkeypatch
):
    def queue_down(request):
        raise ConnectionError("redis is down")

    monkeypatch.setitem(cosign._done_handlers, "single", queue_down)
    single.add_placement(person, document, personal_seal, page=1, x=100, y=120)
    request = single.request_signature(person, task)
    phone.confirm(request)  # the phone's part succeeds all the same
    assert SignRequest.get_by_id(request.id).status == "done"
    assert Task.get_by_id(task.id).status == "in_progress"
    assert single.progress(person, task).state == "done"


def test_a_grant_revoked_while_the_phone_confirms_fails_the_job_and_leaves_the_file(
    person, phone, task, document, personal_seal, department_seal
):
    place_everything(person, document, personal_seal, department_seal)
    request = single.request_signature(person, task)
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    phone.confirm(request)

    progress = single.progress(person, task)
    assert progress.state == "failed" and department_seal.name in progress.error
    failure = JobFailure.get(JobFailure.job_id == f"sign-single-{request.id}")
    assert department_seal.name in failure.error and failure.subject == f"task:{task.public_id}"
    assert single.progress(person, task).state == "failed"  # polling does not re-run a failed job
    assert JobFailure.select().count() == 1
    document = Document.get_by_id(document.id)
    assert (document.revision, document.current_blob) == (0, document.original_blob)
    assert storage.load(document.original_blob) == three_page_pdf()
    assert Task.get_by_id(task.id).status == "in_progress"

    # 重试 once the grant is back: the same confirmation finishes the task.
    SealGrant.update(status="active").where(SealGrant.seal == department_seal.id).execute()
    assert single.request_signature(person, task).id == request.id
    assert Task.get_by_id(task.id).status == "completed"


def test_返回修改_after_a_failed_job_lets_the_person_remove_the_seal_and_sign_again(
    person, phone, task, document, personal_seal, department_seal
):
    single.add_placement(person, document, personal_seal, page=1, x=100, y=120)
    department = single.add_placement(person, document, department_seal, page=1, x=300, y=150)
    request = single.request_signature(person, task)
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    phone.confirm(request)
    assert single.progress(person, task).state == "failed"
    with pytest.raises(single.SigningError, match="已发起签署"):
        single.remove_placement(person, department)

    single.cancel_request(person, task)  # 返回修改
    assert SignRequest.get_by_id(request.id).status == "cancelled"
    assert single.progress(person, task).state == "draft"
    # The seal whose grant went is still shown on the board (its picture too), to be removed.
    assert single.visible_seal(person, department_seal.public_id) == department_seal
    single.remove_placement(person, department)
    again = single.request_signature(person, task)
    assert again.id != request.id
    phone.confirm(again)
    assert Task.get_by_id(task.id).status == "completed"


def test_取消签署_is_refused_once_the_phone_has_started(person, phone, task, document, personal_seal):
    single.add_placement(person, document, personal_seal, page=1, x=100, y=120)
    request = single.request_signature(person, task)
    cosign.start_signing(person, request.token)  # the person pressed 确认签署 on the phone
    with pytest.raises(single.SigningError, match="手机端已开始签署"):
        single.cancel_request(person, task)


def test_an_expired_request_shows_as_failed_and_返回修改_reopens_the_task(person, phone, task, document, personal_seal):
    single.add_placement(person, document, personal_seal, page=1, x=100, y=120)
    request = single.request_signature(person, task)
    SignRequest.update(expires_at=request.created_at).where(SignRequest.id == request.id).execute()
    progress = single.progress(person, task)
    assert progress.state == "failed" and "过期" in progress.error
    single.cancel_request(person, task)
    assert Task.get_by_id(task.id).status == "draft" and single.progress(person, task).state == "draft"
    assert Event.select().order_by(Event.seq.desc()).first().action == "task.reopened"
    with pytest.raises(single.SigningError, match="没有可以取消的签署请求"):
        single.cancel_request(person, task)
