"""Inspect an uploaded PDF: pages, boxes, rotation, signatures — or refuse it with the reason, in Chinese.

A file is accepted only if both programs that will later handle it can:
- pyHanko, which the signer uses, opens it for an incremental update (`IncrementalPdfFileWriter`,
  strict, as sign.py and verify.py open files), and its page tree is one pyHanko can navigate
  (indirect kids, correct /Count at every node, no repeats, no cycles);
- pdfium, which draws the previews, opens it and finds the same number of pages.
A file that fails either is "damaged" — unless qpdf's rewrite of it passes both, in which case the
rewrite is accepted and returned in `PdfInfo.repaired`: callers store those bytes as the original,
since that is what the user will see in the preview and sign. A repaired file that turns out to
carry signatures is refused instead, because the rewrite would have broken them.

The time limit is enforced by parsing in a separate process that is killed when time runs out: a
Python thread cannot be stopped while a parser loops, and a C library (pdfium, qpdf) can hang or
crash outright. Starting a process per file would cost ~0.35 s (importing pyHanko), so workers are
kept and reused, and a call costs one round trip through a pipe: ~0.3 ms for a small file, ~2 ms
for a 1 MB one (bench/pdf_preview.py). A worker that times out or dies is killed with its process
group (qpdf included) and replaced on the next call. A healthy one is retired once its resident
memory passes `WORKER_MAX_RSS` (a big file leaves the heap grown) rather than after a fixed number
of calls, which would make every n-th upload wait for a fresh start. Workers are started by path,
not forked, so they load only the PDF libraries; a process that forks (RQ's work-horse) starts its
own instead of sharing its parent's pipes.
"""

import atexit
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from portal.pdf.errors import PdfRefused

DEFAULT_MAX_PAGES = 1000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0

WORKER_SCRIPT = Path(__file__).with_name("_inspect_worker.py")
WORKER_START_TIMEOUT = 60.0  # a cold start imports pyHanko; this is not the parse's time limit
WORKER_MAX_RSS = 512 * 1024 * 1024
WORKER_MAX_IDLE = 2
# pdfium and pyHanko look for the header in the first 1024 bytes; anything else is not a PDF.
HEADER_WINDOW = 1024


@dataclass(frozen=True)
class PageInfo:
    """One page, in PDF points. `width`/`height` are the visible (crop) box before rotation;
    `display_width`/`display_height` are what a viewer shows, after /Rotate."""

    width: float
    height: float
    crop_box: tuple[float, float, float, float]
    media_box: tuple[float, float, float, float]
    rotation: int
    display_width: float
    display_height: float


@dataclass(frozen=True)
class PdfInfo:
    """What an accepted file contains.

    `is_signed`: at least one signature field holds a signature (empty fields don't count).
    `version`: the PDF version, from the catalog's /Version or else the header ("1.7").
    `repaired`: if not None, qpdf's rewrite of the upload: store it instead of the upload.
    """

    page_count: int
    pages: list[PageInfo]
    is_signed: bool
    version: str
    repaired: bytes | None = None


def inspect(
    data: bytes,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> PdfInfo:
    """Describe the PDF in `data`, or raise PdfRefused saying why it cannot be signed."""
    if len(data) > max_bytes:
        size, limit = len(data) / 1048576, max_bytes / 1048576
        raise PdfRefused("too_large", f"文件大小 {size:.1f} MB，超过了 {limit:g} MB 的上限，请压缩或拆分后重新上传。")
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        raise PdfRefused("not_pdf", "文件不是 PDF 格式，请上传 PDF 文件（Word 文档请选择 .docx 或 .doc）。")

    reply, repaired = _in_worker(data, max_pages, timeout)
    if not reply["ok"]:
        raise _refusal(reply["reason"], reply.get("detail", ""), max_pages=max_pages)
    info = reply["info"]
    pages = [
        PageInfo(**{**page, "crop_box": tuple(page["crop_box"]), "media_box": tuple(page["media_box"])})
        for page in info["pages"]
    ]
    return PdfInfo(
        page_count=len(pages), pages=pages, is_signed=info["is_signed"], version=info["version"], repaired=repaired
    )


def _refusal(reason: str, detail: str, *, max_pages: int) -> PdfRefused:
    """The user's message for a worker's reason. "signed_needs_repair" is the worker's own finer
    code: to callers it is "damaged", only the message differs."""
    messages = {
        "damaged": "PDF 文件已损坏，无法读取或无法在其上签署，请用原软件重新导出 PDF 后上传。",
        "signed_needs_repair": "PDF 文件已含签名但结构有误，修复会使原有签名失效，请上传未损坏的文件。",
        "encrypted": "PDF 文件已加密（设置了打开密码或权限密码），无法在其上签署，请解除加密后重新上传。",
        "no_pages": "PDF 文件中没有任何页面，请检查文件后重新上传。",
        "certified": "PDF 文件带有认证签名（禁止修改），再盖章签署会使该签名失效，请上传未经认证的文件。",
        "too_many_pages": f"PDF 文件超过 {max_pages} 页的上限，请拆分后重新上传。",
    }
    public = "damaged" if reason == "signed_needs_repair" else reason
    return PdfRefused(public, messages[reason], detail)


def _timeout_refusal(timeout: float) -> PdfRefused:
    return PdfRefused(
        "timeout",
        f"PDF 文件解析超时（超过 {timeout:g} 秒），文件可能已损坏或结构异常，请重新导出后上传。",
        f"no answer within {timeout} s",
    )


def _in_worker(data: bytes, max_pages: int, timeout: float) -> tuple[dict, bytes | None]:
    worker = _take_worker()
    try:
        reply, repaired = worker.ask(
            json.dumps({"max_pages": max_pages, "qpdf_timeout": timeout}).encode(), data, timeout
        )
    except _WorkerTimedOut:
        raise _timeout_refusal(timeout) from None
    except _WorkerDied as died:
        # pdfium or qpdf crashing on the file, or the parser exhausting memory: the file is to blame.
        raise _refusal("damaged", str(died), max_pages=max_pages) from None
    _return_worker(worker)
    return reply, repaired


class _WorkerTimedOut(Exception):
    pass


class _WorkerDied(Exception):
    pass


class _Worker:
    """One child process running _inspect_worker.py, in its own process group."""

    def __init__(self):
        self.owner = os.getpid()
        self.timed_out = False
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            ready = self._with_deadline(WORKER_START_TIMEOUT, self._read_frame)
        except (_WorkerTimedOut, _WorkerDied) as e:
            raise RuntimeError(f"the PDF inspection worker did not start: {e}") from e
        if json.loads(ready) != {"ready": True}:
            self.kill()
            raise RuntimeError("the PDF inspection worker sent an unexpected greeting")

    def ask(self, params: bytes, data: bytes, timeout: float) -> tuple[dict, bytes | None]:
        def exchange():
            self._write_frame(params)
            self._write_frame(data)
            self.process.stdin.flush()
            reply = json.loads(self._read_frame())
            repaired = self._read_frame() if reply.get("ok") and reply["info"]["repaired"] else None
            return reply, repaired

        return self._with_deadline(timeout, exchange)

    def _with_deadline(self, seconds: float, work):
        # A timer kills the process group at the deadline; the blocked pipe read then ends with
        # EOF, which is how a hang turns into an exception here.
        timer = threading.Timer(seconds, self._expire)
        timer.daemon = True
        timer.start()
        try:
            return work()
        except (OSError, ValueError, struct.error) as e:
            self.kill()
            if self.timed_out:
                raise _WorkerTimedOut() from None
            raise _WorkerDied(f"worker exited with {self.process.poll()}: {e}") from None
        finally:
            timer.cancel()

    def _expire(self):
        self.timed_out = True
        self.kill()

    def _write_frame(self, payload: bytes):
        self.process.stdin.write(struct.pack(">Q", len(payload)))
        self.process.stdin.write(payload)

    def _read_frame(self) -> bytes:
        header = self.process.stdout.read(8)
        if len(header) < 8:
            raise OSError("end of stream")
        (length,) = struct.unpack(">Q", header)
        payload = self.process.stdout.read(length)
        if len(payload) < length:
            raise OSError("end of stream")
        return payload

    def healthy(self) -> bool:
        return not self.timed_out and self.process.poll() is None

    def resident_bytes(self) -> int:
        """The worker's resident memory, from /proc (0 where there is none: never retire for memory)."""
        try:
            with open(f"/proc/{self.process.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass  # a flush into the dead worker's pipe

    def close(self):
        """Let an idle worker finish: it exits when its input ends."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def _take_worker() -> _Worker:
    with _idle_lock:
        # After a fork the workers in this list belong to the parent process: forget, don't touch.
        _idle[:] = [worker for worker in _idle if worker.owner == os.getpid()]
        while _idle:
            worker = _idle.pop()
            if worker.healthy():
                return worker
            worker.kill()
    return _Worker()


def _return_worker(worker: _Worker):
    if worker.healthy() and worker.resident_bytes() < WORKER_MAX_RSS:
        with _idle_lock:
            if len(_idle) < WORKER_MAX_IDLE:
                _idle.append(worker)
                return
    worker.close()


@atexit.register
def _close_workers():
    with _idle_lock:
        workers = [worker for worker in _idle if worker.owner == os.getpid()]
        _idle.clear()
    for worker in workers:
        worker.close()
