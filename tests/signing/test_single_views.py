"""单方文件签署 in the browser: the task list with search and pages, 【上传文件】, who may open a
board, page previews, placing seals through the board's JSON endpoints, 盖章统计 and 一键删除,
立即签署 with its QR code, the phone's confirmation, and the signed PDF downloaded and verified."""

import io
import re
from urllib.parse import quote

import pytest
from helpers import csrf_token, login, three_page_pdf

from portal.accounts.models import RealNameStatus, User
from portal.audit.models import Event
from portal.certificates import services as certificates
from portal.jobs import JobFailure
from portal.pdf import render
from portal.pdf.verify import verify_pdf
from portal.seals.models import Seal, SealGrant
from portal.signing import single
from portal.signing.models import Document, PagePreview, Placement, SignRequest, Task

pytestmark = pytest.mark.both_databases

HX = {"HX-Request": "true"}


@pytest.fixture
def pc(client, person):
    """张伟's browser, logged in; `pc.token` is the session's CSRF token."""
    login(client)
    client.token = csrf_token(client, "/single")
    return client


def send(client, path, data=None, hx=False):
    """A post as the board's script (fetch) or HTMX sends it: the token in X-CSRFToken."""
    headers = {"X-CSRFToken": client.token, **(HX if hx else {})}
    return client.post(path, data=data or {}, headers=headers)


def upload(client, *files):
    data = {"csrf_token": client.token, "files": [(io.BytesIO(data), name) for name, data in files]}
    return client.post("/single/upload", data=data, content_type="multipart/form-data")


def at(task, document=None) -> str:
    return f"/single/{task.public_id}" + (f"/documents/{document.public_id}" if document else "")


def place(client, task, document, seal, **fields):
    data = {"seal": seal.public_id, "kind": "single", "page": 1, "x": 100, "y": 100, **fields}
    return send(client, at(task, document) + "/placements", data)


def task_rows(html: str) -> list[str]:
    return re.findall(r'data-task="([^"]+)"', html)


def statistics(html: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-stat-seal="([^"]+)">.*?<td class="num">(\d+)</td>', html)}


def sign_token(html: str) -> str:
    return re.search(r"/m/sign/([\w-]+)", html).group(1)


# --- the list ------------------------------------------------------------------------------------


def test_the_home_page_links_单方文件签署_to_the_task_list(pc):
    html = pc.get("/").get_data(as_text=True)
    assert re.search(r'<a href="/single"[^>]*>\s*<span[^>]*></span>\s*<span class="module-title">单方文件签署', html)
    assert pc.get("/single").status_code == 200


def test_the_list_shows_only_the_persons_own_tasks_with_their_status(pc, person):
    drafted, signing, done = (single.start_task(person, [(f"{n}.pdf", three_page_pdf())]) for n in "甲乙丙")
    Task.update(status="in_progress").where(Task.id == signing.id).execute()
    Task.update(status="completed").where(Task.id == done.id).execute()
    others = single.start_task(User.get(User.username == "liuyang"), [("刘洋的文件.pdf", three_page_pdf())])
    html = pc.get("/single").get_data(as_text=True)
    assert task_rows(html) == [done.public_id, signing.public_id, drafted.public_id]
    assert others.public_id not in html and "刘洋的文件" not in html
    labels = re.findall(r'<span class="badge status-\w+">(.*?)</span>', html)
    assert labels == ["已完成", "签署中", "待签署"]


def test_the_list_searches_by_title_or_file_name(pc, person):
    contract = single.start_task(person, [("正文.pdf", three_page_pdf())], title="采购合同")
    agreement = single.start_task(person, [("安全附件.pdf", three_page_pdf())], title="实验室协议")
    assert task_rows(pc.get("/single?q=采购").get_data(as_text=True)) == [contract.public_id]
    assert task_rows(pc.get("/single?q=安全附件").get_data(as_text=True)) == [agreement.public_id]
    assert "没有找到包含“不存在”的签署任务" in pc.get("/single?q=不存在").get_data(as_text=True)


def test_the_list_shows_20_tasks_a_page(pc, person):
    made = [single.start_task(person, [(f"文件{n}.pdf", three_page_pdf())]) for n in range(21)]
    first = pc.get("/single").get_data(as_text=True)
    assert len(task_rows(first)) == 20 and "共 21 条 · 第 1/2 页" in first
    assert 'href="/single?page=2"' in first
    second = pc.get("/single?page=2").get_data(as_text=True)
    assert task_rows(second) == [made[0].public_id] and 'href="/single?page=1"' in second


def test_an_htmx_search_gets_only_the_task_list(pc, person):
    found = single.start_task(person, [("采购合同.pdf", three_page_pdf())])
    single.start_task(person, [("其他.pdf", three_page_pdf())])
    response = pc.get("/single?q=采购", headers=HX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<section class="card task-list" id="task-list">')
    assert task_rows(html) == [found.public_id]
    assert "HX-Request" in response.headers["Vary"]


# --- uploads -------------------------------------------------------------------------------------


def test_uploading_a_pdf_opens_its_board(pc, phone):
    response = upload(pc, ("合同.pdf", three_page_pdf()))
    task = Task.get()
    assert response.status_code == 303 and response.headers["Location"] == f"/single/{task.public_id}"
    board = pc.get(response.headers["Location"]).get_data(as_text=True)
    assert "<h1>合同</h1>" in board and board.count('class="page-frame"') == 3


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [("合同.pdf", b"hello, not a pdf", "不是 PDF 格式"), ("报表.xlsx", b"PK\x03\x04...", "只能上传 PDF、Word")],
)
def test_a_refused_file_is_named_with_the_reason_and_nothing_is_stored(pc, phone, name, data, words):
    response = upload(pc, ("好的.pdf", three_page_pdf()), (name, data))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'id="upload-error">(.*?)</p>', html).group(1)
    assert f"《{name}》" in error and words in error
    assert Task.select().count() == 0 and Document.select().count() == 0


def test_uploading_nothing_asks_for_a_file(pc, phone):
    response = upload(pc)
    assert response.status_code == 422 and "请选择要上传的文件" in response.get_data(as_text=True)


def test_several_files_make_one_task_with_a_tab_for_each_file(pc, phone):
    response = upload(pc, ("合同.pdf", three_page_pdf()), ("附件一.pdf", three_page_pdf()))
    task = Task.get()
    names = [d.name for d in single.task_documents(task)]
    assert names == ["合同.pdf", "附件一.pdf"]
    board = pc.get(response.headers["Location"]).get_data(as_text=True)
    tabs = re.search(r'<nav class="file-tabs".*?</nav>', board, re.S).group(0)
    assert re.findall(r">([^<>]+\.pdf)</a>", tabs) == names


# --- who may sign, who may look ------------------------------------------------------------------


def test_an_unverified_person_is_sent_to_real_name_authentication(client, demo):
    own = single.start_task(User.get(User.username == "liuyang"), [("合同.pdf", three_page_pdf())])
    login(client, "liuyang")
    client.token = csrf_token(client, "/single")
    for attempt in (lambda: upload(client, ("合同.pdf", three_page_pdf())), lambda: client.get(at(own))):
        response = attempt()
        assert response.status_code == 303 and response.headers["Location"] == "/real-name"
        assert "签署文件前需要先完成实名认证" in client.get("/real-name").get_data(as_text=True)
    assert Task.select().count() == 1


def test_the_list_says_what_is_missing_before_signing(app, pc):
    html = pc.get("/single").get_data(as_text=True)  # verified, no certificate yet
    assert re.search(r'id="sign-blocker">签署文件前需要先下载协同签名证书.*?href="/cosign/certificate"', html)
    unverified = app.test_client()
    login(unverified, "liuyang")
    assert 'href="/real-name">去实名认证' in unverified.get("/single").get_data(as_text=True)


def test_a_person_without_a_certificate_is_sent_to_download_one(pc, task):
    for attempt in (lambda: upload(pc, ("合同.pdf", three_page_pdf())), lambda: pc.get(at(task))):
        response = attempt()
        assert response.status_code == 303 and response.headers["Location"] == "/cosign/certificate"
        assert "协同签名证书" in re.search(r'id="flashes">(.*?)</div>', pc.get("/cosign/certificate").text, re.S)[1]


def test_another_persons_task_document_placement_and_page_image_are_404(client, person, task, document, personal_seal):
    row = single.add_placement(person, document, personal_seal, page=1, x=100, y=100)
    liuyang = User.get(User.username == "liuyang")
    liuyang.real_name_status = RealNameStatus.VERIFIED
    liuyang.save()
    own = single.start_task(liuyang, [("我的.pdf", three_page_pdf())])
    login(client, "liuyang")
    client.token = csrf_token(client, "/single")
    gets = [at(task), at(task, document) + "/state", at(task, document) + "/pages/1.jpg?w=160", at(task) + "/summary"]
    gets += [at(task) + "/progress", at(task) + "/preview", at(own, document) + "/state"]
    gets += [f"/signing/seals/{personal_seal.public_id}/image"]
    for path in gets:
        assert client.get(path).status_code == 404, path
    for path in (f"{at(task)}/placements/{row.public_id}/delete", f"{at(own)}/placements/{row.public_id}/delete"):
        assert send(client, path).status_code == 404, path
    assert Placement.select().count() == 1


def test_a_logged_out_visitor_is_sent_to_login(client, task, document):
    for path in ("/single", at(task), at(task, document) + "/pages/1.jpg"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path


# --- page previews -------------------------------------------------------------------------------


def test_a_page_preview_is_rendered_once_then_served_from_the_cache(pc, task, document, monkeypatch):
    calls = []
    real = render.render_page

    def render_once(*args):
        assert not calls, "rendered again instead of using the cache"
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(render, "render_page", render_once)
    path = at(task, document) + "/pages/1.jpg?w=1000"
    first, second = pc.get(path), pc.get(path)
    assert first.status_code == second.status_code == 200
    assert first.mimetype == "image/jpeg" and first.data[:2] == b"\xff\xd8" and second.data == first.data
    assert PagePreview.select().where((PagePreview.page == 1) & (PagePreview.width == 1000)).count() == 1


def test_a_preview_of_another_width_or_a_missing_page_is_404(pc, task, document):
    for query in ("/pages/1.jpg?w=500", "/pages/4.jpg?w=160", "/pages/0.jpg"):
        assert pc.get(at(task, document) + query).status_code == 404, query
    assert pc.get(at(task, document) + "/pages/3.jpg?w=160").status_code == 200


# --- placing seals -------------------------------------------------------------------------------


def test_placing_a_seal_answers_the_state_with_its_impression(pc, task, document, personal_seal):
    response = place(pc, task, document, personal_seal, page=2, x=100, y=200)
    assert response.status_code == 200
    (placed,) = response.json["placements"]
    assert (placed["seal"], placed["kind"], placed["page"], placed["x"], placed["y"]) == (
        personal_seal.public_id,
        "single",
        2,
        100,
        200,
    )
    (impression,) = placed["impressions"]
    size = placed["width"]  # the seal's real size, in points
    assert impression["page"] == 2 and impression["rect"] == pytest.approx([100, 200, size, size])
    assert response.json["pages"] == [[595, 842, 0]] * 3


def test_a_seal_outside_the_page_is_refused_in_chinese(pc, task, document, personal_seal):
    response = place(pc, task, document, personal_seal, x=590, y=100)
    assert response.status_code == 422 and "超出了页面范围" in response.json["error"]
    assert response.json["placements"] == [] and Placement.select().count() == 0


def test_a_range_beyond_the_last_page_names_the_page_count(pc, task, document, personal_seal):
    response = place(pc, task, document, personal_seal, kind="multi_page", page_range="1-3,7", range_mode="range")
    assert response.status_code == 422 and "文件共 3 页" in response.json["error"]


def test_all_pages_and_a_riding_seam_put_one_impression_on_every_page(pc, task, document, personal_seal):
    multi = place(pc, task, document, personal_seal, kind="multi_page", range_mode="all", x=60, y=60)
    assert multi.status_code == 200 and multi.json["placements"][0]["page_range"] == "all"
    riding = place(pc, task, document, personal_seal, kind="riding", range_mode="all", y=400, edge="right")
    assert riding.status_code == 200
    for placed in riding.json["placements"]:
        assert [i["page"] for i in placed["impressions"]] == [1, 2, 3]
    seam = riding.json["placements"][1]["impressions"]
    assert all(x + width == pytest.approx(595) for x, _y, width, _h in (i["rect"] for i in seam))  # right edge


def test_删除骑缝章_removes_the_riding_seams_and_keeps_the_other_seals(pc, task, document, personal_seal):
    place(pc, task, document, personal_seal)
    place(pc, task, document, personal_seal, kind="riding", range_mode="all", y=400, riding_rule="alternate")
    assert "隔页骑缝" in pc.get(at(task) + "/summary").get_data(as_text=True)
    removed = send(pc, at(task, document) + "/riding/delete")
    assert removed.status_code == 200 and [p["kind"] for p in removed.json["placements"]] == ["single"]


def test_a_placed_seal_moves_and_is_deleted_and_a_reload_shows_the_same(pc, task, document, personal_seal):
    placed = place(pc, task, document, personal_seal).json["placements"][0]["id"]
    moved = send(pc, f"{at(task)}/placements/{placed}/move", {"x": 200, "y": 300, "page": 3})
    assert moved.status_code == 200
    assert [(p["page"], p["x"], p["y"]) for p in moved.json["placements"]] == [(3, 200, 300)]
    assert pc.get(at(task, document) + "/state").json == moved.json
    refused = send(pc, f"{at(task)}/placements/{placed}/move", {"x": 590, "y": 300})
    assert refused.status_code == 422 and "超出了页面范围" in refused.json["error"]
    deleted = send(pc, f"{at(task)}/placements/{placed}/delete")
    assert deleted.status_code == 200 and deleted.json["placements"] == []
    assert pc.get(at(task, document) + "/state").json["placements"] == []


def test_盖章统计_counts_impressions_and_一键删除_removes_every_seal(
    pc, task, document, personal_seal, department_seal
):
    place(pc, task, document, personal_seal)
    place(pc, task, document, personal_seal, kind="multi_page", range_mode="range", page_range="2-3", x=60, y=60)
    place(pc, task, document, department_seal, kind="riding", range_mode="all", y=400)
    summary = pc.get(at(task) + "/summary").get_data(as_text=True)
    assert "盖章统计" in summary
    assert statistics(summary) == {personal_seal.public_id: 3, department_seal.public_id: 3}
    cleared = send(pc, at(task) + "/placements/clear", hx=True)
    html = cleared.get_data(as_text=True)
    assert cleared.status_code == 200 and cleared.headers["HX-Trigger"] == "placements-changed"
    assert "尚未加盖印章" in html and statistics(html) == {}
    assert Placement.select().count() == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"x": "nan"}, "有效数字"),
        ({"kind": "riding", "range_mode": "all", "riding_rule": "sideways"}, "骑缝章规则"),
        ({"kind": "riding", "range_mode": "all", "edge": "top"}, "左侧或右侧"),
    ],
)
def test_a_nonsense_position_rule_or_edge_is_refused_in_chinese(pc, task, document, personal_seal, fields, words):
    response = place(pc, task, document, personal_seal, **fields)
    assert response.status_code == 422 and words in response.json["error"]


def test_a_seal_the_person_may_not_use_is_refused(pc, task, document):
    finance = Seal.get(Seal.kind == "finance")
    response = place(pc, task, document, finance)
    assert response.status_code == 422 and "该印章不可用" in response.json["error"]
    assert Placement.select().count() == 0


# --- 立即签署 ------------------------------------------------------------------------------------


def test_立即签署_shows_a_qr_code_and_a_second_click_the_same_request(pc, phone, task, document, personal_seal):
    place(pc, task, document, personal_seal)
    first = send(pc, at(task) + "/sign", hx=True)
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "<svg" in html
    token = sign_token(html)
    assert SignRequest.get().token == token
    assert sign_token(send(pc, at(task) + "/sign", hx=True).get_data(as_text=True)) == token
    assert SignRequest.select().count() == 1


def test_a_board_reloaded_while_the_phone_is_awaited_shows_the_qr_code(pc, phone, task, document, personal_seal):
    place(pc, task, document, personal_seal)
    token = sign_token(send(pc, at(task) + "/sign", hx=True).get_data(as_text=True))
    panel = re.search(r'<div class="sign-panel.*?</figure>', pc.get(at(task)).get_data(as_text=True), re.S)[0]
    assert "<svg" in panel and f"/m/sign/{token}" in panel


def test_立即签署_without_seals_asks_to_place_one(pc, phone, task):
    response = send(pc, at(task) + "/sign", hx=True)
    assert response.status_code == 422 and "请先在文件上放置印章" in response.get_data(as_text=True)
    assert SignRequest.select().count() == 0


def test_取消签署_makes_the_seals_editable_again(pc, phone, task, document, personal_seal):
    place(pc, task, document, personal_seal)
    send(pc, at(task) + "/sign", hx=True)
    assert "等待手机确认" in pc.get(at(task) + "/progress", headers=HX).get_data(as_text=True)
    frozen = place(pc, task, document, personal_seal, y=400)
    assert frozen.status_code == 422 and "已发起签署" in frozen.json["error"]
    cancelled = send(pc, at(task) + "/sign/cancel", hx=True)
    assert cancelled.status_code == 200 and 'data-state="draft"' in cancelled.get_data(as_text=True)
    assert Task.get_by_id(task.id).status == "draft"
    assert place(pc, task, document, personal_seal, y=400).status_code == 200


def test_after_the_phone_confirms_the_signed_file_downloads_and_verifies(
    pc, person, phone, task, document, personal_seal
):
    place(pc, task, document, personal_seal)
    send(pc, at(task) + "/sign", hx=True)
    download = at(task, document) + "/download"
    assert pc.get(download).status_code == 404  # not signed yet
    phone.confirm(SignRequest.get())

    polled = pc.get(at(task) + "/progress", headers=HX)
    assert polled.status_code == 200 and polled.headers["HX-Refresh"] == "true"
    assert "签署完成" in pc.get(at(task)).get_data(as_text=True)
    response = pc.get(download)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == "attachment; filename*=UTF-8''" + quote("合同_已签署.pdf")
    assert "%E5%90%88%E5%90%8C_%E5%B7%B2%E7%AD%BE%E7%BD%B2.pdf" in disposition
    result = verify_pdf(
        response.data, trust_anchors=certificates.trust_anchors(), is_revoked=certificates.revocation_status
    )
    assert result.signatures and all(s.valid for s in result.signatures)
    assert result.signatures[0].signer.common_name == "张伟"
    downloaded = Event.get(Event.action == "document.downloaded")  # the trail says who took the file
    assert (downloaded.actor_id, downloaded.subject) == (person.id, f"document:{document.public_id}")


def test_an_unfinished_task_cannot_be_downloaded(pc, task, document):
    assert pc.get(at(task, document) + "/download").status_code == 404


def test_a_grant_revoked_after_placing_is_refused_at_立即签署_naming_the_seal(
    pc, phone, task, document, department_seal
):
    place(pc, task, document, department_seal)
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    response = send(pc, at(task) + "/sign", hx=True)
    assert response.status_code == 422
    assert department_seal.name in re.search(r'id="sign-error">(.*?)</p>', response.get_data(as_text=True))[1]
    assert SignRequest.select().count() == 0


def test_a_grant_revoked_while_the_phone_confirms_fails_with_重试_and_leaves_the_file(
    pc, phone, task, document, personal_seal, department_seal
):
    place(pc, task, document, personal_seal)
    place(pc, task, document, department_seal, x=300, y=300)
    send(pc, at(task) + "/sign", hx=True)
    SealGrant.update(status="revoked").where(SealGrant.seal == department_seal.id).execute()
    phone.confirm(SignRequest.get())

    html = pc.get(at(task) + "/progress", headers=HX).get_data(as_text=True)
    assert "签署失败" in html and department_seal.name in html
    assert re.search(r'hx-post="/single/[\w-]+/sign"[^>]*>重试</button>', html)
    assert Document.get_by_id(document.id).current_blob == document.current_blob == document.original_blob
    assert JobFailure.select().where(JobFailure.subject == f"task:{task.public_id}").count() == 1


# --- CSRF ----------------------------------------------------------------------------------------


def test_every_post_without_a_csrf_token_is_refused(pc, person, task, document, personal_seal):
    placed = single.add_placement(person, document, personal_seal, page=1, x=100, y=100).public_id
    paths = ["/single/upload", at(task, document) + "/placements", at(task, document) + "/riding/delete"]
    paths += [f"{at(task)}/placements/{placed}/{action}" for action in ("move", "delete")]
    paths += [at(task) + "/placements/clear", at(task) + "/sign", at(task) + "/sign/cancel"]
    for path in paths:
        response = pc.post(path, data={"x": 1, "y": 1}, headers=HX)
        assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True), path
    assert Placement.select().count() == 1 and SignRequest.select().count() == 0
