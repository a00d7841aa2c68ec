"""Regenerate tests/vectors/sm2_2p_golden.json, the golden vectors of the two-party SM2 protocol.

Run from the repository root:  .venv/bin/python -m tests.vectors.make_sm2_2p_vectors

The output is deterministic: every input is fixed or derived from SM3 of a label. The vectors pin
the variant d = (d1·d2)⁻¹ − 1 and the proof-of-knowledge encoding for the browser client, so
regenerate them only on purpose: tests/crypto/test_sm2_2p.py checks the committed file against
the implementation, and a change here is a change of the wire protocol.

Every case is cross-checked while it is made: the same (r, s) must come out of plain SM2 with
d = (d1·d2)⁻¹ − 1 and k = k1·k3 + k2, and the signature must verify.
"""

import json
from itertools import count
from pathlib import Path

from portal.crypto.sm2 import DEFAULT_ID, N, PrivateKey, encode_signature
from portal.crypto.sm2_2p import PROOF_TAG, ClientShare, ServerShare, keygen_context, sign_context
from portal.crypto.sm3 import sm3

OUT = Path(__file__).with_name("sm2_2p_golden.json")
SCALARS = ("d1", "d2", "k1", "k2", "k3", "keygen_proof_nonce", "q1_proof_nonce")

HEADER = {
    "description": (
        "Golden vectors for two-party SM2 signing (协同签名) on the SM2 recommended curve, one variant "
        "only: d = (d1*d2)^-1 - 1. Keygen: P1 = d1^-1*G (+ Schnorr proof of d1^-1), P = d2^-1*P1 - G. "
        "Sign: e = SM3(ZA(P, id) || message); Q1 = k1*G (+ Schnorr proof of k1); (x1, y1) = k3*Q1 + k2*G; "
        "r = (e + x1) mod n; s2 = d2*k3; s3 = d2*(r + k2); s = (d1*k1)*s2 + d1*s3 - r (all mod n). "
        "d and k = k1*k3 + k2 are given only as a test cross-check; no party ever holds d."
    ),
    "proof": (
        "Schnorr over SM3 for X = x*G with nonce t: T = t*G; "
        f"c = SM3('{PROOF_TAG.decode()}' || len(context) as 4 bytes big-endian || context || X || T) mod n; "
        "z = t + c*x mod n; proof = c || z. X and T are uncompressed points. The keygen proof binds "
        "keygen_context, the Q1 proof binds sign_context."
    ),
    "encoding": (
        "scalars and e: 32-byte big-endian hex; points: uncompressed 04||X||Y hex; proofs: c||z hex; "
        "id and message: hex bytes; contexts: UTF-8 text; signature: DER SEQUENCE{r, s} hex"
    ),
}


def derived(label: str) -> int:
    """A scalar in [1, n−1] from a label."""
    return int.from_bytes(sm3(b"esign-portal sm2-2p golden/" + label.encode()), "big") % (N - 1) + 1


def run(case: dict) -> dict:
    """The protocol on fixed inputs, every intermediate value recorded."""
    d1, d2, k1, k2, k3 = (case[name] for name in ("d1", "d2", "k1", "k2", "k3"))
    uid, message = case["id"], case["message"]
    client = ClientShare(d1)
    kctx = keygen_context(case["user_id"])
    keygen_proof = client.keygen_proof(kctx, nonce=case["keygen_proof_nonce"])
    server = ServerShare.keygen(client.p1, keygen_proof, kctx, d2=d2)
    public_key = server.public_key
    e = public_key.digest(message, uid)
    sctx = sign_context(case["session_token"], e)
    nonce = client.begin_sign(sctx, k1=k1, proof_nonce=case["q1_proof_nonce"])
    response = server.respond(nonce.q1, nonce.proof, sctx, e, k2=k2, k3=k3)
    r, s = client.finish_sign(nonce, public_key, e, response)
    der = encode_signature(r, s)

    d = (pow(d1 * d2, -1, N) - 1) % N
    k = (k1 * k3 + k2) % N
    plain = PrivateKey(d)
    assert plain.public_key == public_key, "P is not d·G"
    assert plain.sign_digest(e, k=k) == (r, s), "plain SM2 with d and k gives another signature"
    assert public_key.verify(message, der, uid)

    return {
        "name": case["name"],
        **{name: f"{case[name]:064x}" for name in SCALARS},
        "id": uid.hex(),
        "message": message.hex(),
        "user_id": case["user_id"],
        "session_token": case["session_token"],
        "keygen_context": kctx.decode(),
        "p1": client.p1.hex(),
        "p1_proof": keygen_proof.hex(),
        "p": public_key.hex(),
        "za": public_key.za(uid).hex(),
        "e": f"{e:064x}",
        "sign_context": sctx.decode(),
        "q1": nonce.q1.hex(),
        "q1_proof": nonce.proof.hex(),
        "r": f"{response.r:064x}",
        "s2": f"{response.s2:064x}",
        "s3": f"{response.s3:064x}",
        "s": f"{s:064x}",
        "signature": der.hex(),
        "d": f"{d:064x}",
        "k": f"{k:064x}",
    }


def seeded(name: str, der_length: int, message: bytes, uid: bytes = DEFAULT_ID) -> dict:
    """The first SM3-derived inputs whose DER signature has the given length: 70, 71 and 72
    bytes cover r and s with and without the 0x00 sign byte, which a DER encoder must get right."""
    for attempt in count():
        case = {label: derived(f"{name}/{attempt}/{label}") for label in SCALARS}
        case.update(name=name, id=uid, message=message, user_id=f"user-{name}", session_token=f"session-{name}")
        vector = run(case)
        if len(vector["signature"]) // 2 == der_length:
            return vector
    raise AssertionError("unreachable")


def fixed(name: str, values: tuple[int, ...], message: bytes, uid: bytes = DEFAULT_ID) -> dict:
    case = dict(zip(SCALARS, values, strict=True))
    case.update(name=name, id=uid, message=message, user_id=f"user-{name}", session_token=f"session-{name}")
    return run(case)


def vectors() -> dict:
    cases = [
        seeded("der-72", 72, b"message digest"),
        seeded("der-71", 71, "协同签名测试：合同第3页".encode()),
        seeded("der-70", 70, bytes(range(256))),
        seeded("empty-message-other-id", 71, b"", uid=b"ALICE123@YAHOO.COM"),
        fixed("small-scalars", (2, 3, 5, 7, 11, 13, 17), b"abc"),
        fixed("scalars-near-n", tuple(N - i for i in (2, 3, 4, 5, 6, 7, 8)), b"abc"),
    ]
    return {**HEADER, "cases": cases}


def main() -> None:
    OUT.write_text(json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
