"""The browser cosign client's Node tests (tests/js/*.test.mjs), run from pytest so `make test`
covers them: `node --test` on every file, and pytest fails with Node's report if any test fails."""

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import service_unavailable

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "static" / "vendor" / "cosign-deps.js"


def test_the_node_test_suite_passes():
    node = shutil.which("node")
    if node is None:
        service_unavailable("Node.js", "node is not on PATH; install the nodejs package")
    if not BUNDLE.exists():
        pytest.fail("static/vendor/cosign-deps.js is missing: run `make deps` (scripts/vendor-assets.sh builds it)")
    # Files, not the folder: newer Node versions read `node --test` arguments as glob patterns.
    files = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert files, "no tests/js/*.test.mjs"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
