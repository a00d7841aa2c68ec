"""The one exception of the pdf package: a file the portal refuses, with the reason and what to tell the user.

`reason` is a stable machine-readable code (services branch on it, logs and metrics count it);
`message_zh` is the sentence shown to the user as is; `detail` is an optional technical note for
logs (a parser's exception text, for instance) and is never shown to users.
"""

# Every reason code the package raises. Callers may rely on these strings: add, never rename.
REASONS = frozenset(
    {
        "not_pdf",  # the bytes are not a PDF at all
        "damaged",  # a PDF the signer cannot open or update, even after repair
        "encrypted",  # encrypted or password-protected (PDF or Word)
        "no_pages",  # a PDF with zero pages
        "certified",  # carries a certification (DocMDP) signature: any seal added would break it
        "too_many_pages",  # more pages than the configured limit
        "too_large",  # more bytes than the configured limit
        "timeout",  # parsing did not finish within the time limit
        "not_word",  # given for conversion but neither .docx nor .doc by content
        "word_damaged",  # a Word file LibreOffice could not convert
        "converter_missing",  # LibreOffice is not installed
        "conversion_timeout",  # LibreOffice did not finish within the time limit
    }
)


class PdfRefused(Exception):
    """A file refused with a reason code (see REASONS) and a Chinese message for the user."""

    def __init__(self, reason: str, message_zh: str, detail: str = ""):
        # Not checked against REASONS here: a typo must not turn a refusal into a server error.
        super().__init__(message_zh)
        self.reason = reason
        self.message_zh = message_zh
        self.detail = detail

    def __reduce__(self):
        # Exceptions pickle their args, which here are only the message; keep all three.
        return (type(self), (self.reason, self.message_zh, self.detail))

    def __repr__(self) -> str:
        extra = f", detail={self.detail!r}" if self.detail else ""
        return f"PdfRefused({self.reason!r}, {self.message_zh!r}{extra})"
