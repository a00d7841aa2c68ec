"""SM2 and SM3 against OpenSSL on this machine, in the same run.

    .venv/bin/python bench/crypto.py

Prints, for each measurement, our time, OpenSSL's, the ratio and the target (issue #3):
SM2 sign ≤ 1.0× OpenSSL's time per sign, verify ≤ 3.0×, a full two-party signature (both
sides, no network) ≤ 5× one OpenSSL sign, SM3 throughput ≥ 0.9× OpenSSL's 8 KiB figure.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.crypto import sm2
from portal.crypto.sm3 import sm3

SECONDS = 3


def openssl_sm2() -> tuple[float, float]:
    """Seconds per sign and per verify, from `openssl speed sm2`."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(SECONDS), "sm2"], capture_output=True, text=True).stdout
    sign_rate, verify_rate = re.search(r"SM2 \(CurveSM2\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out).groups()
    return 1 / float(sign_rate), 1 / float(verify_rate)


def openssl_sm3_8k() -> float:
    """Bytes per second for 8 KiB blocks, from `openssl speed -evp sm3 -bytes 8192`."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(SECONDS), "-bytes", "8192", "-evp", "sm3"], capture_output=True, text=True
    ).stdout
    kbytes = re.search(r"^sm3\s+([\d.]+)k", out, re.M).group(1)
    return float(kbytes) * 1000


def per_call(fn, minimum=SECONDS) -> float:
    """Median seconds per call over batches filling `minimum` seconds."""
    fn()
    batches, start = [], time.perf_counter()
    while time.perf_counter() - start < minimum:
        t = time.perf_counter()
        for _ in range(50):
            fn()
        batches.append((time.perf_counter() - t) / 50)
    batches.sort()
    return batches[len(batches) // 2]


def two_party_signature():
    """One co-signature with both sides in this process: phone commits (Q1 + proof), server
    responds (checks the proof, r, s2, s3), phone finishes (s, checked against P), server
    verifies (r, s) before it would use it. No database, no network."""
    from portal.crypto import sm2_2p

    phone = sm2_2p.ClientShare.generate()
    context = sm2_2p.keygen_context("bench")
    server = sm2_2p.ServerShare.keygen(phone.p1, phone.keygen_proof(context), context)
    joint = server.public_key
    e = joint.digest(b"x" * 200)
    session = sm2_2p.sign_context("bench-session", e)

    def cosign():
        nonce = phone.begin_sign(session)
        response = server.respond(nonce.q1, nonce.proof, session, e)
        r, s = phone.finish_sign(nonce, joint, e, response)
        assert joint.verify_digest(e, r, s)

    return cosign


def row(name, ours, theirs, target, lower_is_better=True):
    ratio = ours / theirs
    verdict = "ok" if (ratio <= target if lower_is_better else ratio >= target) else "MISSED"
    unit = "ms" if lower_is_better else "MB/s"
    scale = 1000 if lower_is_better else 1e-6
    print(
        f"{name:<36} ours {ours * scale:9.3f} {unit}   openssl {theirs * scale:9.3f} {unit}"
        f"   ratio {ratio:5.2f}×  target {'≤' if lower_is_better else '≥'} {target}×  {verdict}"
    )


def main():
    key = sm2.PrivateKey.generate()
    message = b"x" * 200  # about the size of a CMS signedAttrs set
    e = key.public_key.digest(message)
    r, s = key.sign_digest(e)

    ossl_sign, ossl_verify = openssl_sm2()
    row("SM2 sign (digest given)", per_call(lambda: key.sign_digest(e)), ossl_sign, 1.0)
    row("SM2 verify (digest given)", per_call(lambda: key.public_key.verify_digest(e, r, s)), ossl_verify, 3.0)

    row("two-party signature, both sides", per_call(two_party_signature()), ossl_sign, 5.0)

    block = bytes(8192)
    ours_sm3 = 8192 / per_call(lambda: sm3(block))
    row("SM3 8 KiB blocks", ours_sm3, openssl_sm3_8k(), 0.9, lower_is_better=False)


if __name__ == "__main__":
    main()
