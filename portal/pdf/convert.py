"""Word (.docx, .doc) to PDF with LibreOffice headless.

Every conversion gets a fresh temporary LibreOffice profile: two soffice processes sharing a
profile hand work to each other (the second one exits and the first converts), so a shared
profile serialises conversions and lets one stuck document block the rest; a fresh profile costs
~0.1 s on a ~0.9 s conversion. The profile disables macros and untrusted referer links, and where
the system allows unprivileged user namespaces, soffice runs in an empty network namespace:
a document can link remote images, and an intranet server must not fetch URLs a document names.
The time limit kills the whole process group (soffice's launcher and soffice.bin).

The type is decided by content, not by the file name: a .docx is a zip holding word/document.xml,
a .doc an OLE2 compound file holding a WordDocument stream. The result is a plain PDF; callers
pass it to `inspect()` like any upload (the tests check that conversions pass it).
"""

import functools
import io
import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
from pathlib import Path

from portal.pdf.errors import PdfRefused

DEFAULT_TIMEOUT = 120.0

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"

# Written into each fresh profile before LibreOffice starts (user/registrymodifications.xcu).
PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" \
oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" \
oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" \
oor:op="fuse"><value>true</value></prop></item>
</oor:items>
"""

DAMAGED_MESSAGE = "Word 文档已损坏或无法识别，无法转换为 PDF，请用 Word 另存为 PDF 后上传。"


def converter_available() -> bool:
    """Whether LibreOffice is installed, so Word uploads can be offered."""
    return _soffice() is not None


def word_to_pdf(data: bytes, filename: str, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The PDF LibreOffice makes of a Word document, or PdfRefused.

    `filename` is the name the user gave the file; it appears only in error details for the log.
    """
    kind = _word_kind(data, filename)
    soffice = _soffice()
    if soffice is None:
        raise PdfRefused(
            "converter_missing",
            "服务器未安装文档转换组件（LibreOffice），暂时无法转换 Word 文档，请上传 PDF 文件。",
            "soffice not found on PATH",
        )
    with tempfile.TemporaryDirectory(prefix="portal-soffice-") as folder:
        work = Path(folder)
        profile = work / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(PROFILE_SETTINGS, encoding="utf-8")
        # The input's name is ours, with the extension its content deserves: LibreOffice picks its
        # import filter partly by extension, and a user's file name may hold anything.
        source = work / f"document.{kind}"
        source.write_bytes(data)
        outdir = work / "out"
        command = [
            *_network_isolation(),
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nologo",
            "--nodefault",
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
            str(outdir),
            str(source),
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),  # nothing of the service account's home is read or written
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise PdfRefused(
                "conversion_timeout",
                f"Word 文档转换超时（超过 {timeout:g} 秒），请检查文档，或用 Word 另存为 PDF 后上传。",
                f"{filename}: soffice killed after {timeout} s",
            ) from None
        finally:
            # A launcher that exited may leave soffice.bin behind; nothing of this run may outlive it.
            _kill_group(process)
        result = outdir / "document.pdf"
        if process.returncode != 0 or not result.is_file() or result.stat().st_size == 0:
            log = output.decode("utf-8", "replace").strip()[-500:]
            raise PdfRefused("word_damaged", DAMAGED_MESSAGE, f"{filename}: soffice exit {process.returncode}: {log}")
        return result.read_bytes()


def _word_kind(data: bytes, filename: str) -> str:
    """'docx' or 'doc' by content, or PdfRefused."""
    if data.startswith(ZIP_MAGIC):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise PdfRefused("word_damaged", DAMAGED_MESSAGE, f"{filename}: broken zip: {e}") from None
        if "word/document.xml" in names:
            return "docx"
    elif data.startswith(OLE2_MAGIC):
        # Stream names sit in the compound file's directory as UTF-16LE; finding them is enough to
        # tell a Word file from another OLE2 file (.xls, .ppt, .msg) without parsing the sectors.
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise PdfRefused(
                "encrypted",
                "Word 文档已设置打开密码，无法转换，请取消密码后重新上传。",
                f"{filename}: OLE2 EncryptedPackage (password-protected Office document)",
            )
        if "WordDocument".encode("utf-16-le") in data:
            return "doc"
    raise PdfRefused(
        "not_word",
        "文件不是 Word 文档（.docx 或 .doc），请上传 PDF 或 Word 文件。",
        f"{filename}: neither a .docx nor a .doc by content",
    )


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@functools.cache
def _network_isolation() -> tuple[str, ...]:
    """A command prefix running soffice without network, or () where the system does not allow it.

    `unshare --net` needs privileges or an unprivileged user namespace (--map-current-user keeps
    our uid inside it); some kernels and container runtimes forbid both, and conversion must still
    work there, so this is probed once rather than assumed.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for options in (["--map-current-user", "--net"], ["--map-root-user", "--net"], ["--net"]):
        try:
            probe = subprocess.run([unshare, *options, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return (unshare, *options, "--")
    return ()


def _kill_group(process: subprocess.Popen):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
