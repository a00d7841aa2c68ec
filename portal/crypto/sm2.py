"""SM2 digital signatures (GB/T 32918.2) on the recommended curve (GB/T 32918.5).

Point arithmetic is python-ecdsa's Jacobian code, accelerated by gmpy2; Z_A, signing and
verification are ours. Python integers are not constant-time, so:

* every multiplication of a point by a secret scalar is blinded: the scalar k is replaced by
  k + m·n with a fresh random m of 64 bits, which gives the same point but changes the bit
  pattern the loop walks on every call;
* every secret is inverted with gmpy2.powmod_sec (Fermat), whose running time does not depend
  on the value;
* every point received from outside is validated (on the curve, not infinity) and every scalar
  is range-checked, before it meets a secret.

That is the threat model for software keys; a hardware key store (PKCS#11 / GM/T 0018 SDF)
replaces this module for CA and organisation keys where one is available.
"""

import secrets
from dataclasses import dataclass
from functools import lru_cache

import gmpy2
from asn1crypto.core import Integer, Sequence
from ecdsa.ellipticcurve import INFINITY, CurveFp, PointJacobi

from portal.crypto.sm3 import sm3

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

DEFAULT_ID = b"1234567812345678"  # GM/T 0009 default user ID
BLINDING_BITS = 64

CURVE = CurveFp(P, A, B, 1)
# python-ecdsa reduces a scalar modulo 2·order before multiplying. Declaring the generator's
# "order" as n·2^(BLINDING_BITS+1) keeps a blinded scalar k + m·n intact (and sizes the
# precomputed table for it); the real order is still n, so the product is k·G.
_BLIND_BOUND = N << (BLINDING_BITS + 1)
G = PointJacobi(CURVE, GX, GY, 1, _BLIND_BOUND, generator=True)
# The plain generator for public scalars (verification).
_G_PUBLIC = PointJacobi(CURVE, GX, GY, 1, N, generator=True)


class SM2Error(ValueError):
    """A key, point, scalar or signature that is not valid SM2."""


def _to_int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _i2b(x: int) -> bytes:
    return int(x).to_bytes(32, "big")


def check_scalar(k: int, name: str = "scalar") -> int:
    if not isinstance(k, int) or not 1 <= k <= N - 1:
        raise SM2Error(f"{name} is outside [1, n-1]")
    return k


def check_point(x: int, y: int) -> PointJacobi:
    """The affine point (x, y) as a curve point, if it is on the curve (cofactor 1: in the group)."""
    if not (0 <= x < P and 0 <= y < P) or (y * y - (x * x * x + A * x + B)) % P != 0:
        raise SM2Error("point is not on the SM2 curve")
    return PointJacobi(CURVE, x, y, 1)


def affine(point) -> tuple[int, int]:
    if point == INFINITY:
        raise SM2Error("point at infinity")
    return int(point.x()), int(point.y())


def random_scalar() -> int:
    return secrets.randbelow(N - 1) + 1


def mul_secret(k: int, point: PointJacobi | None = None):
    """k·point (k·G if point is None) for a secret k, with scalar blinding."""
    blinded = k + secrets.randbits(BLINDING_BITS) * N
    if point is None:
        return G * blinded
    # Variable-base points carry no order, so python-ecdsa does not reduce the scalar.
    return point * blinded


def inv_secret(k: int) -> int:
    """k⁻¹ mod n in time independent of k (Fermat, gmpy2.powmod_sec)."""
    check_scalar(k)
    return int(gmpy2.powmod_sec(k, N - 2, N))


@lru_cache(maxsize=256)
def _precomputed(x: int, y: int) -> PointJacobi:
    """A public key with its table of doublings (~40 KB, 1.3 ms once): the portal verifies the
    same few keys (CA, organisations, repeat signers) over and over, and a table halves it."""
    return PointJacobi(CURVE, x, y, 1, N, generator=True)


def mul_add_public(u: int, v: int, x: int, y: int):
    """u·G + v·(x, y) for public scalars and a validated public point (verification)."""
    return _G_PUBLIC.mul_add(u, _precomputed(x, y), v)


@dataclass(frozen=True)
class PublicKey:
    x: int
    y: int

    def __post_init__(self):
        check_point(self.x, self.y)

    @classmethod
    def from_point(cls, point) -> "PublicKey":
        return cls(*affine(point))

    @classmethod
    def from_bytes(cls, data: bytes) -> "PublicKey":
        """Uncompressed encoding 04 ‖ X ‖ Y."""
        if len(data) != 65 or data[0] != 4:
            raise SM2Error("public key must be 65 bytes, uncompressed (04 ‖ X ‖ Y)")
        return cls(_to_int(data[1:33]), _to_int(data[33:]))

    def to_bytes(self) -> bytes:
        return b"\x04" + _i2b(self.x) + _i2b(self.y)

    @property
    def point(self) -> PointJacobi:
        return PointJacobi(CURVE, self.x, self.y, 1)

    def za(self, uid: bytes = DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)."""
        if len(uid) * 8 > 0xFFFF:
            raise SM2Error("user ID too long")
        return sm3(
            (len(uid) * 8).to_bytes(2, "big")
            + uid
            + _i2b(A)
            + _i2b(B)
            + _i2b(GX)
            + _i2b(GY)
            + _i2b(self.x)
            + _i2b(self.y)
        )

    def digest(self, message: bytes, uid: bytes = DEFAULT_ID) -> int:
        """e = SM3(Z_A ‖ M) as an integer."""
        return _to_int(sm3(self.za(uid) + message))

    def verify_digest(self, e: int, r: int, s: int) -> bool:
        """GB/T 32918.2 §7.1 on a precomputed e."""
        if not (1 <= r <= N - 1 and 1 <= s <= N - 1):
            return False
        t = (r + s) % N
        if t == 0:
            return False
        point = mul_add_public(s, t, self.x, self.y)
        if point == INFINITY:
            return False
        return (e + int(point.x())) % N == r

    def verify(self, message: bytes, signature: bytes, uid: bytes = DEFAULT_ID) -> bool:
        """Check a DER SEQUENCE{r, s} signature over message."""
        try:
            r, s = decode_signature(signature)
        except SM2Error:
            return False
        return self.verify_digest(self.digest(message, uid), r, s)


class PrivateKey:
    """An SM2 private key d ∈ [1, n−2] (1 + d must be invertible)."""

    __slots__ = ("_d", "public_key")

    def __init__(self, d: int):
        if not 1 <= d <= N - 2:
            raise SM2Error("private key is outside [1, n-2]")
        self._d = d
        self.public_key = PublicKey.from_point(mul_secret(d))

    def __repr__(self) -> str:  # never show the secret
        return f"<SM2 PrivateKey {self.public_key.to_bytes()[1:9].hex()}…>"

    @classmethod
    def generate(cls) -> "PrivateKey":
        return cls(secrets.randbelow(N - 2) + 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> "PrivateKey":
        if len(data) != 32:
            raise SM2Error("private key must be 32 bytes")
        return cls(_to_int(data))

    def to_bytes(self) -> bytes:
        return _i2b(self._d)

    def sign_digest(self, e: int, k: int | None = None) -> tuple[int, int]:
        """GB/T 32918.2 §6.1 on a precomputed e. k is for test vectors only."""
        d = self._d
        inv_1d = inv_secret(d + 1)
        while True:
            nonce = check_scalar(k, "nonce") if k is not None else random_scalar()
            x1 = int(mul_secret(nonce).x())
            r = (e + x1) % N
            if r == 0 or r + nonce == N:
                if k is not None:
                    raise SM2Error("the given nonce gives r = 0 or r + k = n")
                continue
            s = inv_1d * (nonce - r * d) % N
            if s == 0:
                if k is not None:
                    raise SM2Error("the given nonce gives s = 0")
                continue
            return r, s

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        """DER SEQUENCE{r, s} over SM3(Z_A ‖ message)."""
        return encode_signature(*self.sign_digest(self.public_key.digest(message, uid)))


class _SM2Signature(Sequence):
    _fields = [("r", Integer), ("s", Integer)]


def encode_signature(r: int, s: int) -> bytes:
    return _SM2Signature({"r": r, "s": s}).dump()


def decode_signature(der: bytes) -> tuple[int, int]:
    """Parse DER SEQUENCE{r, s}, refusing anything but the one minimal encoding."""
    try:
        parsed = _SM2Signature.load(der, strict=True)
        r, s = parsed["r"].native, parsed["s"].native
    except (ValueError, TypeError) as e:
        raise SM2Error(f"not a DER SM2 signature: {e}") from None
    if not (isinstance(r, int) and isinstance(s, int)) or encode_signature(r, s) != der:
        raise SM2Error("SM2 signature is not minimally DER-encoded")
    if not (1 <= r <= N - 1 and 1 <= s <= N - 1):
        raise SM2Error("SM2 signature values are out of range")
    return r, s
