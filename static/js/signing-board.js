// The signing board (单方文件签署): seals dragged onto page previews, with mouse or touch.
//
// The server owns the placements. The board reads the document's state (pages, placements and
// the impressions each draws, as the PDF engine computes them) and sends every change as a form
// post answered with the new state, so what is drawn here is what will be stamped. Positions
// are PDF points, origin at the bottom-left of the displayed page; a seal is drawn at its real
// size: seal points × the page's scale (rendered width in pixels / page width in points).
(() => {
  const board = document.querySelector("[data-board]");
  if (!board) return;

  const CSRF = board.dataset.csrfToken;
  const DRAG_THRESHOLD = 4; // px a pointer moves before a press on a seal becomes a drag
  const errorBox = board.querySelector("[data-board-error]");
  const frames = [...board.querySelectorAll(".page-frame")];
  const seals = new Map(
    [...board.querySelectorAll("[data-seal]")].map((el) => [
      el.dataset.seal,
      {
        id: el.dataset.seal,
        name: el.dataset.sealName,
        width: parseFloat(el.dataset.widthPt),
        height: parseFloat(el.dataset.heightPt),
        src: el.querySelector("img").src,
        personal: el.dataset.personal === "true",
        button: el,
      },
    ]),
  );
  let state = { pages: [], placements: [] };
  let selected = null; // the seal chosen in the panel
  let currentPage = 1; // the page most in view: the sample page of the dialogs

  const url = (template, id) => template.replace("PLACEMENT", encodeURIComponent(id));
  const scaleOf = (frame) => frame.clientWidth / parseFloat(frame.dataset.width);
  const frameOf = (page) => frames[page - 1];
  const clamp = (value, low, high) => Math.min(Math.max(value, low), Math.max(low, high));
  // Seals stay put while the phone is asked to sign them (the server refuses a change anyway).
  const editable = () => !["waiting", "signing"].includes(document.getElementById("sign-panel")?.dataset.state);

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  async function send(target, fields) {
    const body = new FormData();
    for (const [key, value] of Object.entries(fields)) body.append(key, value);
    let response;
    try {
      response = await fetch(target, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": CSRF, Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch {
      return { error: "网络连接失败，请检查网络后重试" };
    }
    const contentType = response.headers.get("Content-Type") || "";
    if (!contentType.includes("json")) return { error: "操作失败，请刷新页面后重试" };
    const result = await response.json();
    if (result.placements) {
      state = result;
      draw();
      document.body.dispatchEvent(new CustomEvent("placements-changed", { detail: { fromBoard: true } }));
    }
    return result;
  }

  async function reload() {
    const response = await fetch(board.dataset.stateUrl, { headers: { Accept: "application/json" } });
    if (response.ok) {
      state = await response.json();
      draw();
    }
  }

  // --- drawing --------------------------------------------------------------------------------

  // One impression: a box at its place on the page showing the seal, or the part of it a riding
  // slice carries (fraction [f0, f1] of the seal's width).
  function impressionElement(placement, impression, frame) {
    const scale = scaleOf(frame);
    const height = parseFloat(frame.dataset.height);
    const [x, y, w, h] = impression.rect;
    const [f0, f1] = impression.fraction;
    const el = document.createElement("div");
    el.className = `impression kind-${placement.kind}`;
    el.dataset.placement = placement.id;
    el.dataset.page = impression.page;
    el.title = `${placement.seal_name}（${placement.kind_label}）`;
    if (!placement.usable) {
      el.classList.add("is-unusable");
      el.title = `${placement.seal_name}：您已不能使用该印章，请删除`;
    }
    Object.assign(el.style, {
      left: `${x * scale}px`,
      top: `${(height - y - h) * scale}px`,
      width: `${w * scale}px`,
      height: `${h * scale}px`,
    });
    const art = document.createElement("img");
    // A seal no longer offered (its grant was revoked) is still drawn, from its own address.
    art.src = seals.get(placement.seal)?.src || board.dataset.sealUrl.replace("SEAL", placement.seal);
    art.alt = "";
    art.draggable = false;
    const full = (w / (f1 - f0)) * scale;
    Object.assign(art.style, { width: `${full}px`, left: `${-f0 * full}px` });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "impression-remove";
    remove.textContent = "×";
    remove.title = placement.kind === "single" ? "删除此印章" : `删除该${placement.kind_label}`;
    remove.setAttribute("aria-label", remove.title);
    remove.addEventListener("click", async (event) => {
      event.stopPropagation();
      const result = await send(url(board.dataset.deleteUrl, placement.id), {});
      showError(result.error);
    });
    el.append(art, remove);
    el.addEventListener("pointerdown", (event) => startMove(event, placement, el, frame));
    return el;
  }

  // The thumbnail strip marks where seals are, so pages that carry one stand out.
  const thumbs = [...board.querySelectorAll(".thumb-page")];

  function thumbMark(impression, thumb) {
    const scale = thumb.clientWidth / parseFloat(thumb.dataset.width);
    const [x, y, w, h] = impression.rect;
    const mark = document.createElement("span");
    mark.className = "thumb-mark";
    Object.assign(mark.style, {
      left: `${x * scale}px`,
      top: `${(parseFloat(thumb.dataset.height) - y - h) * scale}px`,
      width: `${Math.max(w * scale, 2)}px`,
      height: `${Math.max(h * scale, 2)}px`,
    });
    return mark;
  }

  function draw() {
    for (const frame of frames) frame.querySelector("[data-layer]").replaceChildren();
    for (const thumb of thumbs) thumb.querySelector("[data-thumb-layer]").replaceChildren();
    for (const placement of state.placements) {
      for (const impression of placement.impressions) {
        const frame = frameOf(impression.page);
        if (frame) frame.querySelector("[data-layer]").append(impressionElement(placement, impression, frame));
        const thumb = thumbs[impression.page - 1];
        if (thumb) thumb.querySelector("[data-thumb-layer]").append(thumbMark(impression, thumb));
      }
    }
    for (const dialog of board.querySelectorAll("dialog[open]")) listExisting(dialog);
  }

  // --- dragging -------------------------------------------------------------------------------

  function frameAt(clientX, clientY, within = frames) {
    for (const el of document.elementsFromPoint(clientX, clientY)) {
      const frame = el.closest(".page-frame, .sample-frame");
      if (frame && within.includes(frame)) return frame;
    }
    return null;
  }

  // Where a seal box whose top-left corner is at (left, top) px in `frame` lies, in points
  // from the page's bottom-left, kept inside the page.
  function toPoints(frame, left, top, seal) {
    const scale = scaleOf(frame);
    const width = parseFloat(frame.dataset.width);
    const height = parseFloat(frame.dataset.height);
    const x = clamp(left / scale, 0, width - seal.width);
    const y = clamp(height - top / scale - seal.height, 0, height - seal.height);
    return { x: x.toFixed(2), y: y.toFixed(2) };
  }

  // A seal following the pointer at the real size it would have on the page below (or on the
  // first page while it is over none). `onDrop(frame, left, top)` gets its box in that frame;
  // a press released without moving is a tap (`onTap`): browsers do not all follow a cancelled
  // pointerdown with a click, so taps are not left to the click event.
  function dragSeal(event, seal, targets, onDrop, onTap) {
    const startX = event.clientX;
    const startY = event.clientY;
    let ghost = null;
    const source = event.currentTarget;
    source.setPointerCapture?.(event.pointerId);

    const place = (e) => {
      const frame = frameAt(e.clientX, e.clientY, targets) || targets[0];
      const scale = scaleOf(frame);
      const w = seal.width * scale;
      const h = seal.height * scale;
      Object.assign(ghost.style, {
        width: `${w}px`,
        height: `${h}px`,
        left: `${e.clientX - w / 2}px`,
        top: `${e.clientY - h / 2}px`,
      });
    };
    const move = (e) => {
      if (!ghost && Math.hypot(e.clientX - startX, e.clientY - startY) < DRAG_THRESHOLD) return;
      if (!ghost) {
        ghost = document.createElement("img");
        ghost.className = "seal-ghost";
        ghost.src = seal.src;
        ghost.alt = "";
        document.body.append(ghost);
      }
      place(e);
    };
    const up = (e) => {
      source.removeEventListener("pointermove", move);
      source.removeEventListener("pointerup", up);
      source.removeEventListener("pointercancel", cancel);
      if (!ghost) {
        if (e.clientX >= 0) onTap();
        return;
      }
      ghost.remove();
      const frame = frameAt(e.clientX, e.clientY, targets);
      if (!frame) return;
      const box = frame.getBoundingClientRect();
      const scale = scaleOf(frame);
      onDrop(frame, e.clientX - box.left - (seal.width * scale) / 2, e.clientY - box.top - (seal.height * scale) / 2);
    };
    const cancel = () => {
      ghost?.remove();
      ghost = null;
      up({ clientX: -1, clientY: -1 });
    };
    source.addEventListener("pointermove", move);
    source.addEventListener("pointerup", up);
    source.addEventListener("pointercancel", cancel);
  }

  async function addSingle(seal, frame, left, top) {
    const { x, y } = toPoints(frame, left, top, seal);
    const result = await send(board.dataset.addUrl, { seal: seal.id, kind: "single", page: frame.dataset.page, x, y });
    showError(result.error);
  }

  // Moving a placed seal: a single seal may change page; a multi-page seal moves on every page
  // it covers; a riding seam only moves up or down its edge.
  function startMove(event, placement, el, origin) {
    if (event.target.closest(".impression-remove") || event.button > 0 || !editable()) return;
    event.preventDefault();
    const startX = event.clientX;
    const startY = event.clientY;
    const box = el.getBoundingClientRect();
    const grabX = startX - box.left;
    const grabY = startY - box.top;
    const seal = { width: placement.width, height: placement.height };
    let moved = false;
    el.setPointerCapture?.(event.pointerId);
    el.classList.add("is-moving");

    const move = (e) => {
      const dx = placement.kind === "riding" ? 0 : e.clientX - startX;
      const dy = e.clientY - startY;
      if (!moved && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
      moved = true;
      el.style.transform = `translate(${dx}px, ${dy}px)`;
    };
    const up = async (e) => {
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
      el.classList.remove("is-moving");
      if (!moved) return;
      const over = placement.kind === "single" ? frameAt(e.clientX, e.clientY) : null;
      const frame = over || origin;
      const frameBox = frame.getBoundingClientRect();
      const left = placement.kind === "riding" ? 0 : e.clientX - grabX - frameBox.left;
      const { x, y } = toPoints(frame, left, e.clientY - grabY - frameBox.top, seal);
      const fields = { x, y };
      if (placement.kind === "single") fields.page = frame.dataset.page;
      const result = await send(url(board.dataset.moveUrl, placement.id), fields);
      if (result.error) {
        showError(result.error);
        draw();
      } else showError("");
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
  }

  // --- the seal panel -------------------------------------------------------------------------

  function select(seal) {
    selected = selected === seal ? null : seal;
    for (const s of seals.values()) s.button.classList.toggle("is-selected", s === selected);
    board.classList.toggle("has-selection", Boolean(selected));
  }

  // Pointers select through dragSeal's tap; a click with no pointer behind it (detail 0) is the
  // keyboard's Enter or Space.
  const onKeyboardClick = (action) => (event) => event.detail === 0 && action();
  for (const seal of seals.values()) {
    seal.button.addEventListener("click", onKeyboardClick(() => select(seal)));
    seal.button.addEventListener("pointerdown", (event) => {
      if (event.button > 0 || !frames.length) return;
      event.preventDefault();
      dragSeal(
        event,
        seal,
        frames,
        (frame, left, top) => {
          select(null);
          addSingle(seal, frame, left, top);
        },
        () => select(seal),
      );
    });
  }

  // Click-to-place: a selected seal goes where the page is clicked, centred there.
  for (const frame of frames) {
    frame.addEventListener("click", (event) => {
      if (!selected || event.target.closest(".impression")) return;
      const box = frame.getBoundingClientRect();
      const scale = scaleOf(frame);
      const seal = selected;
      select(null);
      addSingle(
        seal,
        frame,
        event.clientX - box.left - (seal.width * scale) / 2,
        event.clientY - box.top - (seal.height * scale) / 2,
      );
    });
  }

  // --- thumbnails -----------------------------------------------------------------------------

  for (const thumb of board.querySelectorAll("[data-goto]")) {
    thumb.addEventListener("click", () => frameOf(Number(thumb.dataset.goto))?.scrollIntoView({ behavior: "smooth" }));
  }
  // The current page is the one across the middle of the window (the dialogs' sample page).
  function trackPage() {
    const middle = window.innerHeight / 2;
    const frame = frames.find((f) => f.getBoundingClientRect().bottom >= middle) || frames.at(-1);
    if (!frame || Number(frame.dataset.page) === currentPage) return;
    currentPage = Number(frame.dataset.page);
    for (const thumb of board.querySelectorAll("[data-goto]")) {
      const current = Number(thumb.dataset.goto) === currentPage;
      thumb.classList.toggle("is-current", current);
      const strip = thumb.parentElement; // sticky, so the thumbs' offsetParent
      if (current && (thumb.offsetTop < strip.scrollTop || thumb.offsetTop + thumb.offsetHeight > strip.scrollTop + strip.clientHeight)) {
        strip.scrollTop = thumb.offsetTop - (strip.clientHeight - thumb.offsetHeight) / 2;
      }
    }
  }
  let tracking = false;
  window.addEventListener("scroll", () => {
    if (tracking) return;
    tracking = true;
    requestAnimationFrame(() => {
      tracking = false;
      trackPage();
    });
  });
  board.querySelector("[data-goto]")?.classList.add("is-current");

  // --- 多页盖章 and 骑缝章 dialogs -------------------------------------------------------------

  function openDialog(dialog) {
    const mode = dialog.dataset.mode;
    const page = currentPage;
    const pageFrame = frameOf(page);
    const sample = dialog.querySelector("[data-sample]");
    Object.assign(sample.dataset, { page, width: pageFrame.dataset.width, height: pageFrame.dataset.height });
    sample.style.aspectRatio = `${pageFrame.dataset.width} / ${pageFrame.dataset.height}`;
    const image = document.createElement("img");
    image.src = pageFrame.querySelector("img").src;
    image.alt = `样本页（第 ${page} 页）`;
    image.draggable = false;
    sample.replaceChildren(image);
    dialog.draft = null; // {seal, left, top} in sample pixels

    const list = dialog.querySelector("[data-dialog-seals]");
    list.replaceChildren();
    for (const seal of seals.values()) {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.className = "seal-choice compact";
      choice.dataset.dialogSeal = seal.id;
      choice.innerHTML = `<img alt="" draggable="false"><span class="seal-choice-text"><strong></strong></span>`;
      choice.querySelector("img").src = seal.src;
      choice.querySelector("strong").textContent = seal.name;
      const choose = () => {
        if (!dialog.draft || dialog.draft.seal !== seal) putDraft(dialog, seal);
      };
      choice.addEventListener("click", onKeyboardClick(choose));
      choice.addEventListener("pointerdown", (event) => {
        if (event.button > 0) return;
        event.preventDefault();
        dragSeal(event, seal, [sample], (frame, left, top) => putDraft(dialog, seal, left, top), choose);
      });
      list.append(choice);
    }
    dialogError(dialog, "");
    listExisting(dialog);
    dialog.showModal();
    if (mode === "riding" && seals.size) {
      putDraft(dialog, [...seals.values()].find((s) => !s.personal) || seals.values().next().value);
    }
  }

  // The seal on the sample page, not saved until 【确定】. Riding: it straddles the chosen edge
  // (dropped near the other edge, it switches to that one) and only its height is free.
  function putDraft(dialog, seal, left, top) {
    const sample = dialog.querySelector("[data-sample]");
    const scale = scaleOf(sample);
    const w = seal.width * scale;
    const h = seal.height * scale;
    if (left === undefined) {
      left = (sample.clientWidth - w) / 2;
      top = (sample.clientHeight - h) / 2;
    }
    top = clamp(top, 0, sample.clientHeight - h);
    if (dialog.dataset.mode === "riding") {
      const edgeInput = dialog.querySelector("input[name=edge]:checked");
      if (left !== 0) {
        const edge = left + w / 2 < sample.clientWidth / 2 ? "left" : "right";
        dialog.querySelector(`input[name=edge][value=${edge}]`).checked = true;
      }
      const edge = (dialog.querySelector("input[name=edge]:checked") || edgeInput).value;
      left = edge === "left" ? -w / 2 : sample.clientWidth - w / 2;
    } else {
      left = clamp(left, 0, sample.clientWidth - w);
    }
    dialog.draft = { seal, left, top };
    for (const choice of dialog.querySelectorAll("[data-dialog-seal]")) {
      choice.classList.toggle("is-selected", choice.dataset.dialogSeal === seal.id);
    }
    let ghost = sample.querySelector(".sample-seal");
    if (!ghost) {
      ghost = document.createElement("img");
      ghost.className = "sample-seal";
      ghost.alt = "";
      ghost.draggable = false;
      ghost.addEventListener("pointerdown", (event) => moveDraft(event, dialog, ghost));
      sample.append(ghost);
    }
    ghost.src = seal.src;
    Object.assign(ghost.style, { left: `${left}px`, top: `${top}px`, width: `${w}px`, height: `${h}px` });
  }

  function moveDraft(event, dialog, ghost) {
    event.preventDefault();
    const start = { x: event.clientX, y: event.clientY, left: dialog.draft.left, top: dialog.draft.top };
    ghost.setPointerCapture?.(event.pointerId);
    const move = (e) => {
      const riding = dialog.dataset.mode === "riding";
      const left = riding ? 0 : start.left + e.clientX - start.x;
      putDraft(dialog, dialog.draft.seal, riding ? 0 : left, start.top + e.clientY - start.y);
    };
    const up = () => {
      ghost.removeEventListener("pointermove", move);
      ghost.removeEventListener("pointerup", up);
    };
    ghost.addEventListener("pointermove", move);
    ghost.addEventListener("pointerup", up);
  }

  function dialogError(dialog, message) {
    const box = dialog.querySelector("[data-dialog-error]");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // The configured ranges of this kind, each with 【删除】.
  function listExisting(dialog) {
    const mode = dialog.dataset.mode;
    const holder = dialog.querySelector(`[data-existing]`);
    const rows = state.placements.filter((p) => p.kind === mode);
    holder.replaceChildren();
    if (!rows.length) return;
    const title = document.createElement("p");
    title.className = "existing-title";
    title.textContent = mode === "riding" ? "已设置的骑缝章" : "已设置的多页盖章";
    const list = document.createElement("ul");
    list.className = "range-list";
    for (const row of rows) {
      const item = document.createElement("li");
      const text = document.createElement("span");
      const range = row.page_range === "all" ? (mode === "riding" ? "全文骑缝" : "全部页") : `第 ${row.page_range} 页`;
      const extra = mode === "riding" ? ` · ${row.riding_rule === "alternate" ? "隔页" : "连续页"} · ${row.edge === "left" ? "左侧" : "右侧"}` : "";
      text.textContent = `${row.seal_type} · ${row.seal_name} · ${range}${extra}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn-link danger";
      remove.textContent = "删除";
      remove.addEventListener("click", async () => {
        const result = await send(url(board.dataset.deleteUrl, row.id), {});
        dialogError(dialog, result.error);
      });
      item.append(text, remove);
      list.append(item);
    }
    holder.append(title, list);
  }

  async function confirmDialog(dialog) {
    const draft = dialog.draft;
    if (!draft) {
      dialogError(dialog, "请先选择印章并拖拽到样本页上");
      return;
    }
    const sample = dialog.querySelector("[data-sample]");
    const form = dialog.querySelector("form");
    const mode = dialog.dataset.mode;
    const rangeMode = form.querySelector("input[name=range_mode]:checked").value;
    const pageRange = rangeMode === "all" ? "all" : form.querySelector("[data-range-input]").value.trim();
    if (!pageRange) {
      dialogError(dialog, "请填写页码范围，例如“1-3,7”");
      return;
    }
    const { x, y } = toPoints(sample, Math.max(draft.left, 0), draft.top, draft.seal);
    const fields = { seal: draft.seal.id, kind: mode, page: sample.dataset.page, x, y, page_range: pageRange };
    if (mode === "riding") {
      fields.riding_rule = form.querySelector("input[name=riding_rule]:checked").value;
      fields.edge = form.querySelector("input[name=edge]:checked").value;
    }
    const result = await send(board.dataset.addUrl, fields);
    if (result.error) dialogError(dialog, result.error);
    else dialog.close();
  }

  for (const button of board.querySelectorAll("[data-open-dialog]")) {
    button.addEventListener("click", () => openDialog(document.getElementById(button.dataset.openDialog)));
  }
  for (const dialog of board.querySelectorAll("dialog.seal-dialog")) {
    const rangeInput = dialog.querySelector("[data-range-input]");
    for (const radio of dialog.querySelectorAll("input[name=range_mode]")) {
      radio.addEventListener("change", () => {
        rangeInput.disabled = dialog.querySelector("input[name=range_mode]:checked").value !== "range";
        if (!rangeInput.disabled) rangeInput.focus();
      });
    }
    for (const radio of dialog.querySelectorAll("input[name=edge]")) {
      radio.addEventListener("change", () => dialog.draft && putDraft(dialog, dialog.draft.seal, 0, dialog.draft.top));
    }
    dialog.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      confirmDialog(dialog);
    });
    for (const close of dialog.querySelectorAll("[data-close-dialog]")) close.addEventListener("click", () => dialog.close());
  }

  board.querySelector("[data-delete-riding]")?.addEventListener("click", async () => {
    if (!state.placements.some((p) => p.kind === "riding")) {
      showError("当前文件没有骑缝章");
      return;
    }
    const result = await send(board.dataset.ridingDeleteUrl, {});
    showError(result.error);
  });

  // --- the rest of the page -------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-sign]")) document.getElementById("sign-panel")?.classList.remove("is-open");
  });
  // 一键删除 and 删除 in the side panel change placements through HTMX: draw them again.
  document.body.addEventListener("placements-changed", (event) => {
    if (!event.detail?.fromBoard) reload();
  });
  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 100);
  });

  if (frames.length) reload();
})();
