"""The PDF engine against its baselines, each measured in the same run (issue #4, DESIGN.md §7).

    .venv/bin/python bench/pdf.py

- a page preview (render + JPEG) vs pdfium's bare render of the same page (≤ 3×);
- stamp one seal + sign a 100-page PDF vs pyHanko signing it with ECDSA P-256, bytes_reserved
  given (≤ 1.2×); a riding seam over the 100 pages + sign (≤ 1.5× that pyHanko time); peak
  memory signing a 50 MB file (≤ 4× the file size above the baseline);
- verify a 100-page file with 10 signatures vs pyHanko validating 10 ECDSA signatures (≤ 1.0×).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _pdf_preview
import _pdf_sign
import _pdf_verify

if __name__ == "__main__":
    for part in (_pdf_preview, _pdf_sign, _pdf_verify):
        print(f"--- {part.__doc__.strip().splitlines()[0]}")
        part.main()
