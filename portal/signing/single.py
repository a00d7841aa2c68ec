"""单方文件签署 (single-party signing) as services: a person uploads files, places seals, confirms
on the phone, and gets signed PDFs.

The flow:
1. `start_task` stores the uploads (portal/signing/documents.py) under a new task whose only
   participant is the person; Word files convert in jobs enqueued after commit.
2. `usable_seals` lists what the person may place: their own active seals and the organisation
   seals they hold an active grant for. `add_placement`, `move_placement`, `remove_placement`,
   `remove_all_placements` edit the board; every change is checked against the pages (ranges,
   the seal inside the page) by the PDF engine's own geometry, so the board cannot save a
   placement the signer would later refuse. `seal_statistics` counts impressions per seal.
3. `request_signature` (立即签署) prepares, for each document, the person's revision — their
   personal seals, or an invisible signature on a document that carries only organisation seals
   or none — and creates one SignRequest whose entries are the DER signedAttrs of those
   revisions. What finishing needs is kept next to each entry in SignRequest.digests (see
   `_entry`): the cosign app reads only "message" and "label", the rest is ours.
4. After the phone has signed every entry, `complete_signing` (the job) assembles each CMS
   with the person's certificate, finishes the revision, and appends one revision per
   organisation seal signed with that organisation's key — only now, after the person's
   confirmation, and only if the grant still holds. All revisions are new blobs; the documents,
   placements and task change in one transaction at the end, so a failure changes nothing.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

from portal import audit, storage
from portal.accounts import realname
from portal.accounts.models import User
from portal.certificates import services as certificates
from portal.cosign import services as cosign
from portal.crypto import cms
from portal.db import database, utcnow
from portal.jobs import JobHandle, enqueue
from portal.pdf import placement as geometry
from portal.pdf.sign import PreparedRevision, finish_revision, prepare_revision, sign_revision, sm2_cms_signer
from portal.seals.models import Seal, SealGrant, SealKind
from portal.seals.services import personal_seals
from portal.signing import documents
from portal.signing.models import (
    ConversionState,
    Document,
    Participant,
    ParticipantStatus,
    Placement,
    PlacementKind,
    SignRequest,
    SignRequestStatus,
    Task,
    TaskKind,
    TaskStatus,
)

SIGN_REASON = "单方文件签署"
OPEN_REQUEST = (SignRequestStatus.PENDING, SignRequestStatus.SIGNING)


class SigningError(Exception):
    """Something the person asked for that cannot be done; the message is for them (Chinese)."""

    def __init__(self, message_zh: str):
        super().__init__(message_zh)
        self.message_zh = message_zh


class TaskNotFound(SigningError, LookupError):
    def __init__(self):
        super().__init__("找不到该签署任务，或您无权查看")


class NotFound(SigningError, LookupError):
    pass


class CertificateRequired(SigningError):
    """The person has no usable cosign certificate: they must activate one on the phone first."""

    def __init__(self):
        super().__init__("您还没有有效的协同签名证书，请先在【协同签名工具】中下载证书后再签署")


# ---------------------------------------------------------------------------------------------
# Tasks and files


def start_task(user: User, files: list[tuple[str, bytes]], *, title: str | None = None) -> Task:
    """A new single-party task for `user` with the uploaded (name, bytes) files.

    Every file is checked before anything is stored, so one refused file (UploadRefused, naming
    it) stores none. Word files convert in jobs enqueued after the commit."""
    if not files:
        raise SigningError("请选择要上传的文件")
    # All files are signed with one confirmation: one SignRequest entry each.
    if len(files) > cosign.MAX_SIGN_ENTRIES:
        raise SigningError(f"一个任务最多 {cosign.MAX_SIGN_ENTRIES} 个文件，请分批上传")
    uploads = [documents.check_upload(name, data) for name, data in files]
    with database.atomic():
        task = Task.create(
            kind=TaskKind.SINGLE,
            title=(title or PurePath(uploads[0].filename).stem)[:255],
            business_type="单方签署",
            initiator=user,
            status=TaskStatus.DRAFT,
        )
        Participant.create(task=task, user=user, party_kind="person", status=ParticipantStatus.TO_SIGN)
        docs = [documents.store(task, upload, user) for upload in uploads]
        audit.record(user, "task.created", f"task:{task.public_id}", {"kind": task.kind, "files": len(docs)})
    for document in docs:
        if document.conversion_state == ConversionState.PENDING:
            enqueue_conversion(document)
    return task


@dataclass(frozen=True)
class TaskList:
    """One page of the person's single-party tasks, newest first, with their files."""

    tasks: list[Task]
    files: dict[int, list[Document]]  # task id → its documents
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_tasks(user: User, query: str = "", page: int = 1, per_page: int = 20) -> TaskList:
    """The person's single-party tasks whose title or a file name contains `query`."""
    condition = (Task.kind == TaskKind.SINGLE) & (Task.initiator == user.id)
    query = (query or "").strip()
    if query:
        named = Document.select(Document.task).where(Document.name.contains(query))
        condition &= Task.title.contains(query) | Task.id.in_(named)
    tasks_query = Task.select().where(condition)
    total = tasks_query.count()
    page = min(max(1, page), max(1, -(-total // per_page)))
    tasks = list(tasks_query.order_by(Task.created_at.desc(), Task.id.desc()).paginate(page, per_page))
    files: dict[int, list[Document]] = {t.id: [] for t in tasks}
    if tasks:
        for document in Document.select().where(Document.task.in_(list(files))).order_by(Document.id):
            files[document.task_id].append(document)
    return TaskList(tasks, files, total, page, per_page)


def enqueue_conversion(document: Document) -> JobHandle:
    from jobs.documents import convert_document

    return enqueue(
        convert_document,
        document.id,
        job_id=f"convert-document-{document.id}",
        subject=f"document:{document.public_id}",
        queue="documents",
    )


def own_task(user: User, public_id: str) -> Task:
    """The person's single-party task with this public id; TaskNotFound for anyone else's."""
    task = Task.get_or_none(
        (Task.public_id == public_id) & (Task.kind == TaskKind.SINGLE) & (Task.initiator == user.id)
    )
    if task is None:
        raise TaskNotFound()
    return task


def participant_of(task: Task) -> Participant:
    return Participant.get(Participant.task == task.id)


def task_documents(task: Task) -> list[Document]:
    return list(Document.select().where(Document.task == task.id).order_by(Document.id))


class Missing:
    REAL_NAME = "real_name"
    CERTIFICATE = "certificate"


def missing_for_signing(user: User) -> str | None:
    """What the person must do before they can sign (Missing.*), or None."""
    if not realname.is_verified(user):
        return Missing.REAL_NAME
    if cosign.current_key_share(user) is None:
        return Missing.CERTIFICATE
    return None


# ---------------------------------------------------------------------------------------------
# Seals the person may use


def usable_seals(user: User) -> list[Seal]:
    """Their active personal seals, then the active organisation seals granted to them."""
    granted = (
        Seal.select()
        .join(SealGrant)
        .where(
            (SealGrant.user == user.id)
            & (SealGrant.status == "active")
            & (Seal.status == "active")
            & Seal.owner_org.is_null(False)
        )
        .distinct()
        .order_by(Seal.id)
    )
    return personal_seals(user) + list(granted)


def usable_seal(user: User, public_id: str) -> Seal:
    """The seal with this public id, if the person may use it now."""
    seal = next((s for s in usable_seals(user) if s.public_id == public_id), None)
    if seal is None:
        raise NotFound("该印章不可用，请刷新页面后重新选择")
    return seal


def visible_seal(user: User, public_id: str) -> Seal:
    """A seal whose picture the person may see: one they may use now, or one placed on their own
    files (its grant may have been revoked since: the board still shows it, to be removed)."""
    try:
        return usable_seal(user, public_id)
    except NotFound:
        pass
    seal = (
        Seal.select()
        .join(Placement, on=Placement.seal == Seal.id)
        .join(Document)
        .join(Task)
        .where((Seal.public_id == public_id) & (Task.initiator == user.id) & (Task.kind == TaskKind.SINGLE))
        .first()
    )
    if seal is None:
        raise NotFound("找不到该印章")
    return seal


def _is_personal(seal: Seal) -> bool:
    return seal.owner_user_id is not None and seal.kind in SealKind.PERSONAL


def check_seal_usable(user: User, seal: Seal) -> None:
    """Raise SigningError naming the seal unless the person may use it right now."""
    if seal.status != "active":
        raise SigningError(f"印章“{seal.name}”已停用，不能使用")
    if seal.owner_user_id is not None:
        if seal.owner_user_id != user.id:
            raise SigningError(f"您不能使用印章“{seal.name}”")
        return
    granted = (
        SealGrant.select()
        .where((SealGrant.seal == seal.id) & (SealGrant.user == user.id) & (SealGrant.status == "active"))
        .exists()
    )
    if not granted:
        raise SigningError(f"您对印章“{seal.name}”的用章授权已被撤销或不存在，不能使用该印章")


# ---------------------------------------------------------------------------------------------
# Placements


def _editable(task: Task) -> None:
    """Placements freeze while a request is open or confirmed (its prepared revisions draw
    them) and once the task is signed; after an expired or failed request they thaw."""
    if task.status == TaskStatus.COMPLETED:
        raise SigningError("该任务已签署完成，不能再修改盖章位置")
    if open_request(task) is not None or confirmed_request(task) is not None:
        raise SigningError("该任务已发起签署，不能再修改盖章位置")


def _ready(document: Document) -> None:
    if document.conversion_state == ConversionState.PENDING:
        raise SigningError(f"《{document.name}》正在转换为 PDF，请稍候")
    if document.conversion_state == ConversionState.FAILED:
        raise SigningError(f"《{document.name}》转换失败：{document.conversion_error}")


def _page_boxes(document: Document) -> list[geometry.PageBox]:
    # The displayed size is all the fit check needs, so each page is given as an unrotated box
    # of that size (page_sizes holds the displayed width and height).
    return [geometry.PageBox(crop=(0.0, 0.0, float(w), float(h))) for w, h, _rotation in document.page_sizes]


def _seal_geometry(seal: Seal) -> geometry.SealImage:
    # Geometry never looks at the picture; loading every PNG to check a drag would be waste.
    return geometry.SealImage(key=seal.public_id, png=b"", width_px=1, height_px=1)


def _engine_placement(row: Placement, image: geometry.SealImage) -> geometry.Placement:
    if row.kind == PlacementKind.SINGLE:
        return geometry.Placement.single(image, row.page, row.x, row.y, row.width, row.height)
    if row.kind == PlacementKind.MULTI_PAGE:
        return geometry.Placement.multi_page(image, row.page_range, row.x, row.y, row.width, row.height)
    return geometry.Placement.riding(
        image, row.page_range, row.y, row.width, row.height, edge=row.edge, rule=row.riding_rule
    )


def _impressions(document: Document, rows: list[Placement], images: dict | None = None) -> list[geometry.Impression]:
    images = images or {}
    try:  # geometry.Placement refuses a non-finite position or an unknown rule or edge
        placements = [_engine_placement(r, images.get(r.seal_id) or _seal_geometry(r.seal)) for r in rows]
        return geometry.impressions(placements, _page_boxes(document))
    except geometry.PlacementError as e:
        raise SigningError(str(e)) from None


def task_document(task: Task, public_id: str) -> Document:
    """A file of the task (the caller has the task from own_task): anything else is not found."""
    document = Document.get_or_none((Document.public_id == public_id) & (Document.task == task.id))
    if document is None:
        raise TaskNotFound()
    return document


def task_placement(task: Task, public_id: str) -> Placement:
    """A seal placed on one of the task's files."""
    row = (
        Placement.select(Placement, Document)
        .join(Document)
        .where((Placement.public_id == public_id) & (Document.task == task.id))
        .first()
    )
    if row is None:
        raise NotFound("找不到该印章位置，可能已被删除")
    return row


def add_placement(
    user: User,
    document: Document,
    seal: Seal,
    *,
    kind: str = PlacementKind.SINGLE,
    page: int = 1,
    x: float = 0.0,
    y: float = 0.0,
    page_range: str | None = None,
    riding_rule: str = "continuous",
    edge: str = "right",
) -> Placement:
    """Place a seal at its real size. `page`: the page of a single seal, the sample page of a
    multi-page or riding one; `page_range` ("all", "1-3,7") for those; (x, y) the seal's
    lower-left corner in points on the displayed page (riding: only y counts)."""
    task = own_task(user, document.task.public_id)
    _editable(task)
    _ready(document)
    check_seal_usable(user, seal)
    if kind not in (PlacementKind.SINGLE, PlacementKind.MULTI_PAGE, PlacementKind.RIDING):
        raise SigningError("未知的盖章方式")
    if kind != PlacementKind.SINGLE and not (page_range or "").strip():
        raise SigningError("请填写盖章的页码范围，例如“1-3,7”，或选择全部页")
    row = Placement(
        document=document,
        participant=participant_of(task),
        seal=seal,
        kind=kind,
        page=page,
        page_range=None if kind == PlacementKind.SINGLE else page_range.strip(),
        x=0.0 if kind == PlacementKind.RIDING else float(x),
        y=float(y),
        width=seal.width_mm * geometry.MM,
        height=seal.height_mm * geometry.MM,
        riding_rule=riding_rule if kind == PlacementKind.RIDING else None,
        edge=edge if kind == PlacementKind.RIDING else None,
    )
    _check_sample_page(document, row)
    _impressions(document, [row])
    with database.atomic():
        row.save(force_insert=True)
        _touch(task)
        audit.record(user, "placement.added", f"placement:{row.public_id}", _describe(row))
    return row


def _check_sample_page(document: Document, row: Placement) -> None:
    if not isinstance(row.page, int) or not 1 <= row.page <= document.page_count:
        raise SigningError(f"页码 {row.page} 超出范围：文件共 {document.page_count} 页")


def move_placement(user: User, row: Placement, *, x: float, y: float, page: int | None = None) -> Placement:
    """Move a placed seal (riding: only its height on the edge changes)."""
    task = own_task(user, row.document.task.public_id)
    _editable(task)
    row.x = 0.0 if row.kind == PlacementKind.RIDING else float(x)
    row.y = float(y)
    if page is not None:
        row.page = page
    _check_sample_page(row.document, row)
    _impressions(row.document, [row])
    with database.atomic():
        row.save()
        _touch(task)
        audit.record(user, "placement.moved", f"placement:{row.public_id}", _describe(row))
    return row


def remove_placement(user: User, row: Placement) -> None:
    task = own_task(user, row.document.task.public_id)
    _editable(task)
    with database.atomic():
        row.delete_instance()
        _touch(task)
        audit.record(user, "placement.removed", f"placement:{row.public_id}", {"task": task.public_id})


def remove_riding_seams(user: User, document: Document) -> int:
    """删除骑缝章: every riding seam on the file; returns how many went."""
    task = own_task(user, document.task.public_id)
    _editable(task)
    with database.atomic():
        removed = (
            Placement.delete()
            .where((Placement.document == document.id) & (Placement.kind == PlacementKind.RIDING))
            .execute()
        )
        _touch(task)
        audit.record(user, "placement.riding_removed", f"document:{document.public_id}", {"removed": removed})
    return removed


def remove_all_placements(user: User, task: Task) -> int:
    """一键删除: every seal placed on the task's files; returns how many placements went."""
    _editable(task)
    ids = [d.id for d in task_documents(task)]
    with database.atomic():
        removed = Placement.delete().where(Placement.document.in_(ids)).execute()
        _touch(task)
        audit.record(user, "placement.removed_all", f"task:{task.public_id}", {"removed": removed})
    return removed


def placement_impressions(document: Document) -> list[tuple[Placement, list[geometry.Impression]]]:
    """Each placement of the document with the impressions it will draw (the board shows these:
    a multi-page seal on every page it covers, a riding seam as its slices)."""
    return [(row, _impressions(document, [row])) for row in placements_of(document)]


def placements_of(document: Document) -> list[Placement]:
    """The file's placements with their seals (one query: the board and 盖章统计 read every seal)."""
    query = Placement.select(Placement, Seal).join(Seal).where(Placement.document == document.id)
    return list(query.order_by(Placement.id))


@dataclass(frozen=True)
class SealCount:
    seal: Seal
    impressions: int  # widgets the seal will draw across the task's files (riding: one per slice)


def seal_statistics(task: Task) -> list[SealCount]:
    """盖章统计: how many impressions of each seal the task's files will carry, in first-placed order."""
    counts: Counter = Counter()
    seals: dict[int, Seal] = {}
    for document in task_documents(task):
        rows = placements_of(document)
        for row in rows:
            seals.setdefault(row.seal_id, row.seal)
        for impression in _impressions(document, rows):
            counts[impression.seal.key] += 1
    return [SealCount(seal, counts[seal.public_id]) for seal in seals.values()]


def _touch(task: Task) -> None:
    Task.update(updated_at=utcnow()).where(Task.id == task.id).execute()


def _describe(row: Placement) -> dict:
    return {
        "document": row.document.public_id,
        "seal": row.seal.public_id,
        "kind": row.kind,
        "page": row.page,
        "page_range": row.page_range,
        "x": round(row.x, 2),
        "y": round(row.y, 2),
        "riding_rule": row.riding_rule,
        "edge": row.edge,
    }


# ---------------------------------------------------------------------------------------------
# 立即签署


def open_request(task: Task) -> SignRequest | None:
    """The task's sign request that is still waiting for the phone, if any."""
    return (
        SignRequest.select()
        .join(Participant)
        .where(
            (Participant.task == task.id) & SignRequest.status.in_(OPEN_REQUEST) & (SignRequest.expires_at > utcnow())
        )
        .order_by(SignRequest.id.desc())
        .first()
    )


def confirmed_request(task: Task) -> SignRequest | None:
    """The request the phone finished, whose signing job has not completed the task (yet)."""
    return (
        SignRequest.select()
        .join(Participant)
        .where((Participant.task == task.id) & (SignRequest.status == SignRequestStatus.DONE))
        .order_by(SignRequest.id.desc())
        .first()
    )


def request_signature(user: User, task: Task) -> SignRequest:
    """立即签署: the SignRequest the phone confirms (its token goes into the QR code).

    Clicking again returns the open request instead of making another; once the phone has
    confirmed, it (re)starts the signing job, which is how 重试 works after a failure."""
    task = own_task(user, task.public_id)
    if task.status == TaskStatus.COMPLETED:
        raise SigningError("该任务已签署完成")
    existing = open_request(task) or confirmed_request(task)
    if existing is not None:
        if existing.status == SignRequestStatus.DONE:  # 重试 after a failed signing job
            with database.atomic():
                SignRequest.update(error="").where(SignRequest.id == existing.id).execute()
                audit.record(user, "task.signing_retried", f"task:{task.public_id}", {"sign_request": existing.id})
            start_signing_job(existing)
            existing = SignRequest.get_by_id(existing.id)
        return existing
    missing = missing_for_signing(user)
    if missing == Missing.REAL_NAME:
        raise SigningError(realname.RealNameRequired.message)
    if missing == Missing.CERTIFICATE:
        raise CertificateRequired()

    docs = task_documents(task)
    for document in docs:
        _ready(document)
    rows = {d.id: placements_of(d) for d in docs}
    if not any(rows.values()):
        raise SigningError("请先在文件上放置印章")
    for seal in {r.seal_id: r.seal for placed in rows.values() for r in placed}.values():
        check_seal_usable(user, seal)

    # The revisions are prepared before the transaction: a large file takes a while, and the
    # optimistic claim below settles a double click without holding a lock meanwhile.
    claimed_at = task.updated_at
    signing_time = datetime.now(UTC)
    entries = [_entry(user, d, rows[d.id], signing_time) for d in docs]
    with database.atomic():
        claim = Task.update(status=TaskStatus.IN_PROGRESS, updated_at=utcnow()).where(
            (Task.id == task.id)
            & Task.status.in_([TaskStatus.DRAFT, TaskStatus.IN_PROGRESS])
            & (Task.updated_at == claimed_at)
        )
        if claim.execute() != 1:
            claimed = None
        else:
            claimed = cosign.create_sign_request(
                participant_of(task), user, [(bytes.fromhex(e["message"]), e["label"]) for e in entries]
            )
            # create_sign_request writes the cosign contract; the finishing data rides along.
            claimed.digests = [{**written, **entry} for written, entry in zip(claimed.digests, entries, strict=True)]
            claimed.save()
            audit.record(user, "task.signing_requested", f"task:{task.public_id}", {"sign_request": claimed.id})
    if claimed is None:  # another click got there first
        claimed = open_request(task)
        if claimed is None:
            raise SigningError("签署请求正在生成，请稍后刷新页面")
    return claimed


def _entry(user: User, document: Document, rows: list[Placement], signing_time: datetime) -> dict:
    """Prepare the person's revision of one document; the SignRequest entry that finishes it.

    "message" is DER signedAttrs (what the phone co-signs, see cosign.create_sign_request);
    "prepared_blob" holds the file with the empty /Contents; "base_blob" the file it extends,
    so a job can tell a document that moved on since. The personal revision draws only the
    person's own seals; organisation seals get their own revisions after confirmation."""
    personal = [r for r in rows if _is_personal(r.seal)]
    placements = [_engine_placement(r, _seal_image(r.seal)) for r in personal]
    base = storage.load(document.current_blob)
    try:
        prepared = prepare_revision(base, placements, name=user.name, reason=SIGN_REASON, signing_time=signing_time)
    except geometry.PlacementError as e:
        raise SigningError(f"《{document.name}》：{e}") from None
    attrs = cms.prepare_signed_attrs(digest=prepared.digest, signing_time=prepared.signing_time)
    blob = storage.save(prepared.data, "application/pdf")
    return {
        "message": attrs.hex(),
        "label": f"《{document.name}》第 {document.revision + 1} 次签章",
        "impressions": len(_impressions(document, rows)),  # every seal the file will carry (盖章统计)
        "document": document.id,
        "base_blob": document.current_blob,
        "prepared_blob": blob.key,
        "field_name": prepared.field_name,
        "byte_range": list(prepared.byte_range),
        "digest": prepared.digest.hex(),
        "signing_time": prepared.signing_time.isoformat(),
    }


def _seal_image(seal: Seal) -> geometry.SealImage:
    return geometry.SealImage.from_png(seal.public_id, storage.load(seal.image_blob))


# ---------------------------------------------------------------------------------------------
# After the phone: the signing job


def cancel_request(user: User, task: Task) -> None:
    """取消签署 / 返回修改: withdraw a request the phone has not started, or one whose signing job
    failed (or that expired), so the seals can be changed; signing then needs a new 立即签署."""
    task = own_task(user, task.public_id)
    if task.status == TaskStatus.COMPLETED:
        raise SigningError("该任务已签署完成")
    request = open_request(task) or confirmed_request(task)
    if request is None and task.status != TaskStatus.IN_PROGRESS:
        raise SigningError("没有可以取消的签署请求")
    with database.atomic():
        if request is None:  # the request expired or failed on the phone: only the task reopens
            audit.record(user, "task.reopened", f"task:{task.public_id}")
        else:
            failed = request.status == SignRequestStatus.DONE and bool(request.error)
            if request.status != SignRequestStatus.PENDING and not failed:
                raise SigningError("手机端已开始签署，无法取消")
            withdrawn = SignRequest.update(status=SignRequestStatus.CANCELLED).where(
                (SignRequest.id == request.id)
                & (SignRequest.status == request.status)
                & (SignRequest.error != "" if failed else SignRequest.error == request.error)
            )
            if withdrawn.execute() != 1:  # the phone started, or 重试 restarted the job, meanwhile
                raise SigningError("手机端已开始签署，无法取消")
            audit.record(user, "sign_request.cancelled", f"sign_request:{request.id}", {"task": task.public_id})
        Task.update(status=TaskStatus.DRAFT, updated_at=utcnow()).where(Task.id == task.id).execute()


def start_signing_job(request: SignRequest) -> JobHandle:
    """Enqueue the job that finishes a confirmed request (idempotent: call it from any poll)."""
    from jobs.signing import sign_single_task

    task = request.participant.task
    return enqueue(
        sign_single_task,
        request.id,
        job_id=f"sign-single-{request.id}",
        subject=f"task:{task.public_id}",
        queue="signing",
    )


@dataclass(frozen=True)
class Progress:
    """What the PC page shows after 立即签署: waiting → signing → done, or failed with 重试."""

    state: str  # draft | waiting | signing | done | failed
    request: SignRequest | None
    error: str = ""


def progress(user: User, task: Task) -> Progress:
    """The task's signing state for the self-updating partial. Once the phone is done it starts
    the signing job; a job that failed is not re-run by polling, only by 重试 (request_signature)."""
    task = own_task(user, task.public_id)
    if task.status == TaskStatus.COMPLETED:
        return Progress("done", confirmed_request(task))
    request = open_request(task)
    if request is not None:
        return Progress("waiting" if request.status == SignRequestStatus.PENDING else "signing", request)
    request = confirmed_request(task)
    if request is not None:
        if not request.error:
            start_signing_job(request)
            request = SignRequest.get_by_id(request.id)
        if Task.get_by_id(task.id).status == TaskStatus.COMPLETED:
            return Progress("done", request)
        if request.error:
            return Progress("failed", request, request.error)
        return Progress("signing", request)
    latest = (
        SignRequest.select()
        .join(Participant)
        .where(Participant.task == task.id)
        .order_by(SignRequest.id.desc())
        .first()
    )
    if latest is not None and task.status == TaskStatus.IN_PROGRESS:
        return Progress("failed", latest, latest.error or "签署请求已过期或失败，请重新签署")
    return Progress("draft", None)


def complete_signing(sign_request_id: int) -> Task:
    """The signing job's body (see `_complete`). A failure is also written to the request's
    `error` (the phone's part is done, so the field is free): the PC page shows it and stops
    re-running the job until 重试. The error is re-raised, so the job records a JobFailure."""
    try:
        return _complete(sign_request_id)
    except Exception as e:
        message = e.message_zh if isinstance(e, SigningError) else "签署过程中出现系统错误，请稍后重试"
        with database.atomic():
            SignRequest.update(error=message).where(SignRequest.id == sign_request_id).execute()
            audit.record(None, "task.signing_failed", f"sign_request:{sign_request_id}", {"error": message})
        raise


def _complete(sign_request_id: int) -> Task:
    """The signing job's body: finish each document's personal revision with the phone's
    signature, then append one revision per organisation seal, and complete the task.

    Idempotent: a completed task is returned as is. Everything is computed first and written in
    one transaction, so a failure (a revoked grant, a missing key) leaves every document as it
    was and raises, which the job records as a JobFailure."""
    request = SignRequest.get_by_id(sign_request_id)
    participant = request.participant
    task = participant.task
    if task.status == TaskStatus.COMPLETED:
        return task
    user = request.user
    signatures = cosign.signatures_for(request)  # refuses a request the phone has not finished
    certificate = bytes(cosign.signing_certificate(request).der)
    chain = certificates.chain()

    results = []
    for entry, signature in zip(request.digests, signatures, strict=True):
        document = Document.get_by_id(entry["document"])
        if document.current_blob != entry["base_blob"]:
            raise SigningError(f"《{document.name}》在发起签署后已被修改，请重新签署")
        prepared = PreparedRevision(
            data=storage.load(entry["prepared_blob"]),
            field_name=entry["field_name"],
            byte_range=tuple(entry["byte_range"]),
            digest=bytes.fromhex(entry["digest"]),
            digest_algorithm="sm3",
            signing_time=datetime.fromisoformat(entry["signing_time"]),
        )
        signed_attrs = bytes.fromhex(entry["message"])
        revisions = [finish_revision(prepared, cms.assemble(signed_attrs, signature, certificate, chain))]
        org_rows = [r for r in placements_of(document) if not _is_personal(r.seal)]
        applied_org_seals = []
        for seal, rows in _by_seal(org_rows):
            # The grant is checked again here: it may have been revoked while the phone was out.
            check_seal_usable(user, seal)
            revisions.append(_org_revision(revisions[-1], seal, rows, chain))
            applied_org_seals.append(seal)
        results.append((document, revisions, applied_org_seals))

    with database.atomic():
        done = Task.update(status=TaskStatus.COMPLETED, completed_at=utcnow(), updated_at=utcnow()).where(
            (Task.id == task.id) & (Task.status == TaskStatus.IN_PROGRESS)
        )
        if done.execute() != 1:  # a concurrent run completed it
            return Task.get_by_id(task.id)
        for document, revisions, applied_org_seals in results:
            keys = [storage.save(data, "application/pdf").key for data in revisions]
            Document.update(current_blob=keys[-1], revision=Document.revision + len(keys)).where(
                Document.id == document.id
            ).execute()
            for seal in applied_org_seals:
                # Who unlocked the organisation's key: the person whose confirmation started this.
                audit.record(
                    user,
                    "seal.org_signature",
                    f"document:{document.public_id}",
                    {"seal": seal.public_id, "organization": seal.owner_org.public_id, "sign_request": request.id},
                )
            audit.record(user, "document.signed", f"document:{document.public_id}", {"revisions": keys})
        Placement.update(status="applied").where(Placement.participant == participant.id).execute()
        Participant.update(status=ParticipantStatus.SIGNED, signed_at=utcnow()).where(
            Participant.id == participant.id
        ).execute()
        audit.record(user, "task.completed", f"task:{task.public_id}", {"sign_request": request.id})
    return Task.get_by_id(task.id)


def signed_file_name(name: str) -> str:
    """合同.pdf / 合同.docx → 合同_已签署.pdf"""
    return f"{PurePath(name).stem}_已签署.pdf"


def signed_file(user: User, document: Document) -> bytes:
    """【下载】: the signed PDF of the person's completed task; the trail records who took it."""
    task = own_task(user, document.task.public_id)
    if task.status != TaskStatus.COMPLETED or document.current_blob is None:
        raise SigningError("文件尚未签署完成，不能下载")
    with database.atomic():
        audit.record(user, "document.downloaded", f"document:{document.public_id}", {"blob": document.current_blob})
    return storage.load(document.current_blob)


def _by_seal(rows: list[Placement]) -> list[tuple[Seal, list[Placement]]]:
    groups: dict[int, tuple[Seal, list[Placement]]] = {}
    for row in rows:
        groups.setdefault(row.seal_id, (row.seal, []))[1].append(row)
    return list(groups.values())


def _org_revision(pdf: bytes, seal: Seal, rows: list[Placement], chain: list[bytes]) -> bytes:
    """One revision drawing one organisation seal, signed with that organisation's key."""
    organization = seal.owner_org
    key = certificates.load_org_key(organization)
    signer = sm2_cms_signer(bytes(certificates.org_certificate(organization).der), chain, key.sign)
    image = _seal_image(seal)
    placements = [_engine_placement(r, image) for r in rows]
    return sign_revision(pdf, placements, signer, name=organization.name, reason=SIGN_REASON).data


# The phone's confirmation starts the signing job at once; the PC's progress panel is a fallback.
cosign.on_sign_request_done(TaskKind.SINGLE, start_signing_job)
