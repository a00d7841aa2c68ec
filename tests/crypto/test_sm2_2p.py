"""Two-party SM2 (d = (d1·d2)⁻¹ − 1): golden vectors, equivalence with plain SM2, and the checks
that close the known attacks (crypto_standards.md §1.4, weaknesses A–H)."""

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import service_unavailable

from portal.crypto.asn1 import pem, public_key_info
from portal.crypto.sm2 import DEFAULT_ID, N, PrivateKey, PublicKey, encode_signature, random_scalar
from portal.crypto.sm2_2p import (
    ClientShare,
    RestartProtocol,
    SchnorrProof,
    ServerShare,
    TwoPartyError,
    keygen_context,
    prove_knowledge,
    sign_context,
    verify_knowledge,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "sm2_2p_golden.json").read_text(encoding="utf-8"))
KEYGEN = keygen_context("user-under-test")


def h(value: int) -> str:
    return f"{value:064x}"


def keygen(d1: int | None = None, d2: int | None = None) -> tuple[ClientShare, ServerShare]:
    client = ClientShare(d1) if d1 is not None else ClientShare.generate()
    return client, ServerShare.keygen(client.p1, client.keygen_proof(KEYGEN), KEYGEN, d2=d2)


def sign(client, server, message: bytes, token: str = "session", **nonces) -> tuple[int, int]:
    """One protocol run; k1 may be fixed (k1=…), and k2, k3 (k2=…, k3=…)."""
    e = server.public_key.digest(message)
    context = sign_context(token, e)
    nonce = client.begin_sign(context, k1=nonces.get("k1"))
    response = server.respond(nonce.q1, nonce.proof, context, e, k2=nonces.get("k2"), k3=nonces.get("k3"))
    return client.finish_sign(nonce, server.public_key, e, response)


def joint_private_key(d1: int, d2: int) -> PrivateKey:
    """Test-only: the key no party ever holds."""
    return PrivateKey((pow(d1 * d2, -1, N) - 1) % N)


# --- the variant is pinned --------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_golden_vectors_reproduce(case):
    """Every value of the committed vectors, recomputed from their fixed inputs."""
    scalar = {name: int(case[name], 16) for name in ("d1", "d2", "k1", "k2", "k3")}
    uid, message = bytes.fromhex(case["id"]), bytes.fromhex(case["message"])

    client = ClientShare(scalar["d1"])
    assert client.p1.hex() == case["p1"]
    kctx = keygen_context(case["user_id"])
    assert kctx.decode() == case["keygen_context"]
    keygen_proof = client.keygen_proof(kctx, nonce=int(case["keygen_proof_nonce"], 16))
    assert keygen_proof.hex() == case["p1_proof"]

    server = ServerShare.keygen(client.p1, SchnorrProof.from_hex(case["p1_proof"]), kctx, d2=scalar["d2"])
    assert server.public_key.hex() == case["p"]
    assert server.public_key.za(uid).hex() == case["za"]
    e = server.public_key.digest(message, uid)
    assert h(e) == case["e"]

    sctx = sign_context(case["session_token"], e)
    assert sctx.decode() == case["sign_context"]
    nonce = client.begin_sign(sctx, k1=scalar["k1"], proof_nonce=int(case["q1_proof_nonce"], 16))
    assert (nonce.q1.hex(), nonce.proof.hex()) == (case["q1"], case["q1_proof"])

    r, s2, s3 = server.respond(nonce.q1, nonce.proof, sctx, e, k2=scalar["k2"], k3=scalar["k3"])
    assert (h(r), h(s2), h(s3)) == (case["r"], case["s2"], case["s3"])
    assert client.finish_sign(nonce, server.public_key, e, (r, s2, s3)) == (r, int(case["s"], 16))
    assert encode_signature(r, int(case["s"], 16)).hex() == case["signature"]
    assert PublicKey.from_hex(case["p"]).verify(message, bytes.fromhex(case["signature"]), uid)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_golden_vectors_are_plain_sm2_with_d_and_k(case):
    """The vectors' own cross-check: P = d·G and (r, s) is the plain SM2 signature with nonce k,
    for d = (d1·d2)⁻¹ − 1 and k = k1·k3 + k2 (not the "d1·d2 − 1" variant)."""
    d1, d2, k1, k2, k3 = (int(case[name], 16) for name in ("d1", "d2", "k1", "k2", "k3"))
    plain = joint_private_key(d1, d2)
    assert h(int.from_bytes(plain.to_bytes(), "big")) == case["d"]
    assert h((k1 * k3 + k2) % N) == case["k"]
    assert plain.public_key.hex() == case["p"]
    assert plain.sign_digest(int(case["e"], 16), k=(k1 * k3 + k2) % N) == (int(case["r"], 16), int(case["s"], 16))


def test_the_golden_vectors_cover_every_der_length():
    """70, 71 and 72 bytes: r and s with and without the 0x00 sign byte."""
    assert {len(case["signature"]) // 2 for case in VECTORS["cases"]} == {70, 71, 72}


# --- equivalence with plain SM2 ---------------------------------------------------------------


def test_the_joint_key_is_d_times_g_with_d_the_inverse_of_d1_d2_minus_one():
    for _ in range(5):
        d1, d2 = random_scalar(), random_scalar()
        _, server = keygen(d1, d2)
        assert server.public_key == joint_private_key(d1, d2).public_key


def test_a_protocol_signature_is_plain_sm2_with_nonce_k1_k3_plus_k2():
    for _ in range(10):
        d1, d2, k1, k2, k3 = (random_scalar() for _ in range(5))
        client, server = keygen(d1, d2)
        r, s = sign(client, server, b"contract", k1=k1, k2=k2, k3=k3)
        e = server.public_key.digest(b"contract")
        assert joint_private_key(d1, d2).sign_digest(e, k=(k1 * k3 + k2) % N) == (r, s)


def test_many_random_protocol_signatures_verify_with_plain_sm2():
    for _ in range(20):
        client, server = keygen()
        for _ in range(10):
            message = secrets.token_bytes(secrets.randbelow(200))
            der = encode_signature(*sign(client, server, message))
            assert server.public_key.verify(message, der)
            assert not server.public_key.verify(message + b"!", der)


def test_protocol_signatures_verify_with_openssl(tmp_path):
    """An independent verifier: OpenSSL 3 with the GM/T default ID (it defaults to an empty ID)."""
    if shutil.which("openssl") is None:
        service_unavailable("OpenSSL", "the openssl command is not installed")

    def openssl_verifies(public_key: PublicKey, message: bytes, der: bytes) -> bool:
        (tmp_path / "pub.pem").write_text(pem(public_key_info(public_key).dump(), "PUBLIC KEY"))
        (tmp_path / "sig.der").write_bytes(der)
        (tmp_path / "msg").write_bytes(message)
        command = ["openssl", "dgst", "-sm3", "-verify", "pub.pem", "-sigopt", f"distid:{DEFAULT_ID.decode()}"]
        result = subprocess.run(
            [*command, "-signature", "sig.der", "msg"], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        return result.returncode == 0 and "Verified OK" in result.stdout

    for i in range(5):
        client, server = keygen()
        message = f"协同签名 {i}".encode() * (i + 1)
        der = encode_signature(*sign(client, server, message))
        assert openssl_verifies(server.public_key, message, der)
    assert not openssl_verifies(server.public_key, message + b"x", der)  # the oracle can say no


def test_every_run_uses_fresh_nonces():
    """The default path never repeats k1, k2 or k3: signing the same digest twice differs."""
    client, server = keygen()
    e = server.public_key.digest(b"same")
    first, second = client.begin_sign(sign_context("a", e)), client.begin_sign(sign_context("a", e))
    assert first.q1 != second.q1
    assert sign(client, server, b"same") != sign(client, server, b"same")


# --- proofs of knowledge (weakness H) ---------------------------------------------------------


def test_a_proof_of_knowledge_verifies_only_for_its_point_and_context():
    x = random_scalar()
    point = PrivateKey(x).public_key
    proof = prove_knowledge(x, point, b"context")
    assert verify_knowledge(point, proof, b"context")
    assert not verify_knowledge(point, proof, b"another context")
    assert not verify_knowledge(PrivateKey(random_scalar()).public_key, proof, b"context")
    assert not verify_knowledge(point, SchnorrProof(proof.c, (proof.z + 1) % N), b"context")
    assert not verify_knowledge(point, prove_knowledge(x + 1, point, b"context"), b"context")


def test_server_refuses_p1_without_a_valid_proof():
    client = ClientShare.generate()
    with pytest.raises(TwoPartyError, match="proof of knowledge for P1"):
        ServerShare.keygen(client.p1, client.keygen_proof(keygen_context("someone else")), KEYGEN)
    other = ClientShare.generate()  # a proof for another point (e.g. a rogue P1 chosen from P1')
    with pytest.raises(TwoPartyError, match="proof of knowledge for P1"):
        ServerShare.keygen(client.p1, other.keygen_proof(KEYGEN), KEYGEN)


def test_server_refuses_q1_without_a_valid_proof():
    client, server = keygen()
    e = server.public_key.digest(b"m")
    nonce = client.begin_sign(sign_context("session-a", e))
    with pytest.raises(TwoPartyError, match="proof of knowledge for Q1"):
        server.respond(nonce.q1, nonce.proof, sign_context("session-b", e), e)  # made for another session
    with pytest.raises(TwoPartyError, match="proof of knowledge for Q1"):
        server.respond(nonce.q1, nonce.proof, sign_context("session-a", e + 1), e + 1)  # for another digest


def test_malformed_proofs_are_refused():
    with pytest.raises(TwoPartyError):
        SchnorrProof.from_bytes(bytes(63))
    with pytest.raises(TwoPartyError):
        SchnorrProof.from_bytes(N.to_bytes(32, "big") + bytes(32))  # c = n is out of range
    with pytest.raises(TwoPartyError, match="not hex"):
        SchnorrProof.from_hex("zz" * 64)


def test_server_refuses_a_d2_that_puts_the_joint_key_at_infinity():
    """d1·d2 ≡ 1 would make P = O (d = 0); with a random d2 the server just draws again."""
    d1 = random_scalar()
    with pytest.raises(TwoPartyError, match="infinity"):
        keygen(d1, pow(d1, -1, N))


# --- the phone's checks (weaknesses A and D) --------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 2], ids=["r", "s2", "s3"])
@pytest.mark.parametrize("bad", [0, N], ids=["zero", "n"])
def test_client_refuses_r_s2_or_s3_outside_0_n(position, bad):
    """Weakness A: with s2 = 0, s = d1·s3 − r and anyone who sees s learns d1 = (s + r)/s3."""
    d1 = random_scalar()
    client, server = keygen(d1)
    e = server.public_key.digest(b"m")
    context = sign_context("session", e)
    nonce = client.begin_sign(context)
    response = list(server.respond(nonce.q1, nonce.proof, context, e))
    response[position] = bad
    with pytest.raises(TwoPartyError, match="outside") as refused:
        client.finish_sign(nonce, server.public_key, e, tuple(response))
    assert f"{d1:x}" not in str(refused.value) and str(d1) not in str(refused.value)


@pytest.mark.parametrize("tamper", ["s2", "s3", "r", "digest"])
def test_client_refuses_to_release_an_s_that_does_not_verify(tamper):
    client, server = keygen()
    e = server.public_key.digest(b"m")
    context = sign_context("session", e)
    nonce = client.begin_sign(context)
    r, s2, s3 = server.respond(nonce.q1, nonce.proof, context, e)
    changed = {"r": (r % (N - 1) + 1, s2, s3), "s2": (r, s2 % (N - 1) + 1, s3), "s3": (r, s2, s3 % (N - 1) + 1)}
    expected = e + 1 if tamper == "digest" else e
    with pytest.raises(TwoPartyError, match="does not give a valid signature"):
        client.finish_sign(nonce, server.public_key, expected, changed.get(tamper, (r, s2, s3)))


@pytest.mark.parametrize("degenerate", ["s = 0", "s = n - r"])
def test_client_restarts_the_protocol_when_s_is_zero_or_n_minus_r(degenerate):
    """Weakness D: the standard's retry case; the phone asks for a whole new run."""
    d1, k1 = random_scalar(), random_scalar()
    client, server = keygen(d1)
    nonce = client.begin_sign(b"context", k1=k1)
    r, s2 = random_scalar(), random_scalar()
    if degenerate == "s = 0":  # d1·k1·s2 + d1·s3 − r ≡ 0
        s3 = (r - d1 * k1 * s2) * pow(d1, -1, N) % N
    else:  # d1·k1·s2 + d1·s3 − r ≡ −r
        s3 = -k1 * s2 % N
    with pytest.raises(RestartProtocol):
        client.finish_sign(nonce, server.public_key, 0, (r, s2, s3))


def test_a_client_nonce_is_single_use():
    """Finishing twice would combine one k1 with two responses: the leak of weakness B."""
    client, server = keygen()
    e = server.public_key.digest(b"m")
    context = sign_context("session", e)
    nonce = client.begin_sign(context)
    response = server.respond(nonce.q1, nonce.proof, context, e)
    client.finish_sign(nonce, server.public_key, e, response)
    with pytest.raises(TwoPartyError, match="already used"):
        client.finish_sign(nonce, server.public_key, e, server.respond(nonce.q1, nonce.proof, context, e))


# --- why nonces are never reused (weaknesses B and C) -----------------------------------------


def test_reusing_k1_in_two_sessions_lets_the_server_recover_d1():
    """This test exists so that nobody "optimises" the phone's nonce generation (caching k1,
    deriving it from e alone, restoring it from a VM snapshot): with one k1 in two sessions the
    server sees s + r = (d1·k1)·s2 + d1·s3 twice, a linear system in (d1·k1, d1), and solves
    d1 = (s2a·(sb + rb) − s2b·(sa + ra)) / (s2a·s3b − s2b·s3a). With its own d2 it then holds the
    whole key. The protocol layer refuses a repeated Q1 per key share for the same reason."""
    d1, k1 = random_scalar(), random_scalar()
    client, server = keygen(d1)
    runs = []
    for message in (b"first document", b"second document"):
        e = server.public_key.digest(message)
        context = sign_context("session", e)
        nonce = client.begin_sign(context, k1=k1)
        r, s2, s3 = server.respond(nonce.q1, nonce.proof, context, e)
        _, s = client.finish_sign(nonce, server.public_key, e, (r, s2, s3))
        runs.append((r, s2, s3, s))
    (ra, s2a, s3a, sa), (rb, s2b, s3b, sb) = runs
    recovered = (s2a * (sb + rb) - s2b * (sa + ra)) * pow(s2a * s3b - s2b * s3a, -1, N) % N
    assert recovered == d1


def test_reusing_k2_k3_lets_the_phone_recover_d2():
    """The server's side of the same rule: s3 = d2·(r + k2) twice gives d2 = (s3a − s3b)/(ra − rb)."""
    d2, k2, k3 = random_scalar(), random_scalar(), random_scalar()
    client, server = keygen(d2=d2)
    runs = []
    for message in (b"first document", b"second document"):
        e = server.public_key.digest(message)
        context = sign_context("session", e)
        nonce = client.begin_sign(context)
        runs.append(server.respond(nonce.q1, nonce.proof, context, e, k2=k2, k3=k3))
    (ra, _, s3a), (rb, _, s3b) = runs
    assert (s3a - s3b) * pow(ra - rb, -1, N) % N == d2


# --- secrets stay secret -----------------------------------------------------------------------


def test_no_repr_shows_a_secret():
    d1, d2, k1 = random_scalar(), random_scalar(), random_scalar()
    client, server = keygen(d1, d2)
    nonce = client.begin_sign(b"context", k1=k1)
    for obj in (client, server, nonce):
        text = repr(obj) + str(obj)
        for secret in (d1, d2, k1):
            assert f"{secret:x}" not in text and f"{secret:X}" not in text and str(secret) not in text
