"""Two-party SM2 signing (协同签名): the phone holds d1, the server holds d2, nobody holds d.

One variant only, pinned by tests/vectors/sm2_2p_golden.json (the "d1·d2 − 1" variant that also
circulates is incompatible with it):

    d = (d1·d2)⁻¹ − 1        so that  (1 + d)⁻¹ = d1·d2,  the factor standard SM2 signing uses.

Key generation
    phone:  P1 = d1⁻¹·G, with a proof of knowledge of d1⁻¹
    server: checks P1 and the proof, P = d2⁻¹·P1 − G = d·G (refused if infinity: d1·d2 ≡ 1)

Signing a digest e = SM3(Z_A(P) ‖ M), which the server computes itself
    phone:  Q1 = k1·G, with a proof of knowledge of k1
    server: checks Q1 and the proof; fresh k2, k3; (x1, y1) = k3·Q1 + k2·G;
            r = (e + x1) mod n;  s2 = d2·k3;  s3 = d2·(r + k2)                   (all mod n)
    phone:  checks 0 < r, s2, s3 < n;  s = (d1·k1)·s2 + d1·s3 − r  (mod n);
            a new run if s = 0 or s = n − r; verifies (r, s) against P before releasing it.

With k = k1·k3 + k2 this is s = (1 + d)⁻¹·(k + r) − r, exactly GB/T 32918.2, so any SM2
verifier accepts (r, s). The checks close the known attacks (crypto_standards.md §1.4): a zero
s2 or s3 would reveal d1 in s (A); a repeated k1 reveals d1 and a repeated (k2, k3) reveals d2
(B, C: nonces are fresh per run and each ClientNonce is single-use); invalid or infinity points
(F); and without proofs of knowledge a party could pick its point as a function of the other's (H).

The proof is a Schnorr proof made non-interactive with SM3 (Fiat–Shamir):

    t random, T = t·G,  c = SM3(PROOF_TAG ‖ len(context) (4 bytes) ‖ context ‖ X ‖ T) mod n,
    z = t + c·x (mod n);  the proof is c ‖ z (64 bytes); X and T are 65-byte uncompressed points.
    Verify: T' = z·G − c·X ≠ O and c = SM3(… ‖ X ‖ T') mod n.

The context binds the proof to one user (keygen) or one session and digest (signing), so a
proof cannot be replayed elsewhere; keygen_context() and sign_context() build it.

Pure: no Flask, no database. Every multiplication by a secret goes through mul_secret (blinded,
or OpenSSL's constant-time ladder; see sm2.py), every
secret is inverted with inv_secret, and no repr, exception or log shows a secret. Nonces can be
injected through keyword arguments for the golden vectors only; production code never passes them.
"""

from dataclasses import dataclass
from typing import NamedTuple

from portal.crypto.sm2 import (
    SM2P256,
    N,
    PublicKey,
    SM2Error,
    affine,
    check_scalar,
    inv_secret,
    mul_add_public,
    mul_secret,
    random_scalar,
)
from portal.crypto.sm3 import sm3

PROOF_TAG = b"esign-portal/sm2-2p/schnorr-sm3/v1"
_NEG_G = SM2P256.point(SM2P256.gx, SM2P256.p - SM2P256.gy)  # −G


class TwoPartyError(SM2Error):
    """A message from the other party that the protocol must refuse."""


class RestartProtocol(TwoPartyError):
    """s = 0 or r + s = n (the standard's retry case): run the whole protocol again with new nonces."""


def _i2b(x: int) -> bytes:
    return x.to_bytes(32, "big")


def keygen_context(user_id: str) -> bytes:
    """What a key-generation proof is bound to: the user the key is made for."""
    return f"esign-portal/cosign/keygen/{user_id}".encode()


def sign_context(session_token: str, e: int) -> bytes:
    """What a signing proof is bound to: the session and the digest it signs."""
    return f"esign-portal/cosign/sign/{session_token}/{e:064x}".encode()


# --- proof of knowledge of a discrete logarithm -------------------------------------------------


@dataclass(frozen=True)
class SchnorrProof:
    """A non-interactive proof that the sender knows x with X = x·G (public values only)."""

    c: int
    z: int

    def __post_init__(self):
        if not (isinstance(self.c, int) and isinstance(self.z, int) and 0 <= self.c < N and 0 <= self.z < N):
            raise TwoPartyError("proof of knowledge is out of range")

    def to_bytes(self) -> bytes:
        return _i2b(self.c) + _i2b(self.z)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SchnorrProof":
        if len(data) != 64:
            raise TwoPartyError("proof of knowledge must be 64 bytes (c ‖ z)")
        return cls(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big"))

    def hex(self) -> str:
        return self.to_bytes().hex()

    @classmethod
    def from_hex(cls, value: str) -> "SchnorrProof":
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise TwoPartyError("proof of knowledge is not hex") from None
        return cls.from_bytes(data)


def _challenge(context: bytes, statement: PublicKey, commitment: PublicKey) -> int:
    data = PROOF_TAG + len(context).to_bytes(4, "big") + context + statement.to_bytes() + commitment.to_bytes()
    return int.from_bytes(sm3(data), "big") % N


def prove_knowledge(secret: int, statement: PublicKey, context: bytes, *, nonce: int | None = None) -> SchnorrProof:
    """Prove knowledge of `secret` = log_G(statement). A fixed nonce is for golden vectors only:
    two proofs with one nonce reveal the secret."""
    t = check_scalar(nonce, "proof nonce") if nonce is not None else random_scalar()
    commitment = PublicKey.from_point(mul_secret(t))
    c = _challenge(context, statement, commitment)
    return SchnorrProof(c, (t + c * secret) % N)


def verify_knowledge(statement: PublicKey, proof: SchnorrProof, context: bytes) -> bool:
    """Whether `proof` shows knowledge of log_G(statement), made for this context."""
    commitment = mul_add_public(proof.z, (-proof.c) % N, statement.x, statement.y)  # public scalars
    try:
        commitment = PublicKey.from_point(commitment)
    except SM2Error:  # T' at infinity: no honest proof gives it
        return False
    return _challenge(context, statement, commitment) == proof.c


# --- the phone ----------------------------------------------------------------------------------


class ClientNonce:
    """The phone's nonce k1 for one signing run, with Q1 = k1·G and its proof.

    Single-use: finishing consumes k1, because a k1 used with two server responses gives the
    server d1 (weakness B)."""

    __slots__ = ("_k1", "proof", "q1")

    def __init__(self, k1: int, q1: PublicKey, proof: SchnorrProof):
        self._k1: int | None = k1
        self.q1, self.proof = q1, proof

    def __repr__(self) -> str:  # never show k1
        return f"<ClientNonce Q1={self.q1.hex()[2:18]}…{' used' if self._k1 is None else ''}>"

    def _consume(self) -> int:
        k1, self._k1 = self._k1, None
        if k1 is None:
            raise TwoPartyError("this nonce was already used; start a new signing run")
        return k1


class ClientShare:
    """The phone's share d1 and its public point P1 = d1⁻¹·G."""

    __slots__ = ("_d1", "p1")

    def __init__(self, d1: int):
        self._d1 = check_scalar(d1, "client share")
        self.p1 = PublicKey.from_point(mul_secret(inv_secret(d1)))

    def __repr__(self) -> str:  # never show d1
        return f"<ClientShare P1={self.p1.hex()[2:18]}…>"

    @classmethod
    def generate(cls) -> "ClientShare":
        return cls(random_scalar())

    @classmethod
    def from_bytes(cls, data: bytes) -> "ClientShare":
        if len(data) != 32:
            raise SM2Error("client share must be 32 bytes")
        return cls(int.from_bytes(data, "big"))

    def to_bytes(self) -> bytes:
        """d1, for the phone's own (wrapped) storage only."""
        return _i2b(self._d1)

    def keygen_proof(self, context: bytes, *, nonce: int | None = None) -> SchnorrProof:
        """The proof of knowledge of d1⁻¹ that goes to the server with P1."""
        return prove_knowledge(inv_secret(self._d1), self.p1, context, nonce=nonce)

    def begin_sign(self, context: bytes, *, k1: int | None = None, proof_nonce: int | None = None) -> ClientNonce:
        """Step 1 of signing: a fresh k1, Q1 = k1·G and the proof for this session's context.
        A fixed k1 is for golden vectors and attack demonstrations only."""
        k1 = check_scalar(k1, "nonce k1") if k1 is not None else random_scalar()
        q1 = PublicKey.from_point(mul_secret(k1))
        return ClientNonce(k1, q1, prove_knowledge(k1, q1, context, nonce=proof_nonce))

    def finish_sign(
        self, nonce: ClientNonce, public_key: PublicKey, e: int, response: tuple[int, int, int]
    ) -> tuple[int, int]:
        """Step 3 of signing: (r, s) from the server's response (r, s2, s3), released only if it
        verifies against the joint key P and the digest e the phone expects. The nonce is used
        up even when the response is refused, so k1 never meets a second response."""
        k1 = nonce._consume()
        if not (isinstance(response, tuple) and len(response) == 3):
            raise TwoPartyError("server response must be (r, s2, s3)")
        r, s2, s3 = response
        for name, value in (("r", r), ("s2", s2), ("s3", s3)):
            # 0 < x < n: a zero s2 or s3 would make s reveal d1 (weakness A).
            if not isinstance(value, int) or not 0 < value < N:
                raise TwoPartyError(f"server value {name} is outside (0, n)")
        d1 = self._d1
        s = (d1 * k1 % N * s2 + d1 * s3 - r) % N
        if s == 0 or s == N - r:
            raise RestartProtocol("degenerate signature (s = 0 or r + s = n); sign again with fresh nonces")
        if not public_key.verify_digest(e, r, s):
            raise TwoPartyError("the server's response does not give a valid signature")
        return r, s


# --- the server ---------------------------------------------------------------------------------


class ServerResponse(NamedTuple):
    r: int
    s2: int
    s3: int


class ServerShare:
    """The server's share d2 and the joint public key P it belongs to."""

    __slots__ = ("_d2", "public_key")

    def __init__(self, d2: int, public_key: PublicKey):
        self._d2 = check_scalar(d2, "server share")
        self.public_key = public_key

    def __repr__(self) -> str:  # never show d2
        return f"<ServerShare P={self.public_key.hex()[2:18]}…>"

    @classmethod
    def keygen(cls, p1: PublicKey, proof: SchnorrProof, context: bytes, *, d2: int | None = None) -> "ServerShare":
        """Step 2 of key generation: check the phone's P1 and proof, pick d2, P = d2⁻¹·P1 − G.
        P1 is a PublicKey, so it is on the curve and not infinity. A fixed d2 is for golden
        vectors only."""
        if not verify_knowledge(p1, proof, context):
            raise TwoPartyError("the proof of knowledge for P1 does not verify")
        while True:
            share = check_scalar(d2, "server share") if d2 is not None else random_scalar()
            try:
                public_key = PublicKey.from_point(mul_secret(inv_secret(share), p1.point) + _NEG_G)
            except SM2Error:  # infinity: d1·d2 ≡ 1, so d would be 0
                if d2 is not None:
                    raise TwoPartyError("d2 is the inverse of d1; the joint key would be infinity") from None
                continue
            return cls(share, public_key)

    @classmethod
    def from_bytes(cls, data: bytes, public_key: PublicKey) -> "ServerShare":
        if len(data) != 32:
            raise SM2Error("server share must be 32 bytes")
        return cls(int.from_bytes(data, "big"), public_key)

    def to_bytes(self) -> bytes:
        """d2, to be wrapped by the key store and never stored bare."""
        return _i2b(self._d2)

    def respond(
        self,
        q1: PublicKey,
        proof: SchnorrProof,
        context: bytes,
        e: int,
        *,
        k2: int | None = None,
        k3: int | None = None,
    ) -> ServerResponse:
        """Step 2 of signing: check the phone's Q1 and proof, then (r, s2, s3) for digest e with
        fresh k2, k3 (reusing them would reveal d2: weakness C). Fixed k2, k3 are for golden
        vectors only."""
        if not isinstance(e, int) or not 0 <= e < 1 << 256:
            raise TwoPartyError("digest must be a 256-bit integer")
        if not verify_knowledge(q1, proof, context):
            raise TwoPartyError("the proof of knowledge for Q1 does not verify")
        fixed = k2 is not None or k3 is not None
        while True:
            if fixed:
                n2, n3 = check_scalar(k2, "nonce k2"), check_scalar(k3, "nonce k3")
            else:
                n2, n3 = random_scalar(), random_scalar()
            try:
                x1, _ = affine(mul_secret(n3, q1.point) + mul_secret(n2))
            except SM2Error:  # k1·k3 + k2 ≡ 0
                x1 = None
            r = (e + x1) % N if x1 is not None else 0
            # r + k2 ≡ 0 would make s3 zero, which the phone (rightly) refuses.
            if r != 0 and (r + n2) % N != 0:
                d2 = self._d2
                return ServerResponse(r, d2 * n3 % N, d2 * (r + n2) % N)
            if fixed:
                raise TwoPartyError("the given nonces give r = 0 or s3 = 0")
