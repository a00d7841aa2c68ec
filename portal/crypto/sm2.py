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
from collections import OrderedDict
from dataclasses import dataclass, field

import gmpy2
from asn1crypto.core import Integer, Sequence
from ecdsa.ellipticcurve import INFINITY, CurveFp, PointJacobi

from portal.crypto.sm3 import sm3

DEFAULT_ID = b"1234567812345678"  # GM/T 0009 default user ID
BLINDING_BITS = 64


class _PointA3(PointJacobi):
    """A Jacobian point on a curve with a = −3 (the SM2 curve): doubling by dbl-2001-b, 3M + 5S
    instead of the general formula's extra squaring and multiplication by a (about 18% off a
    variable-base multiplication)."""

    def _double(self, X1, Y1, Z1, p, a):
        if not Z1 or not Y1:
            return 0, 0, 0
        delta = Z1 * Z1 % p
        gamma = Y1 * Y1 % p
        beta = X1 * gamma % p
        alpha = 3 * (X1 - delta) * (X1 + delta) % p
        X3 = (alpha * alpha - 8 * beta) % p
        Z3 = ((Y1 + Z1) ** 2 - gamma - delta) % p
        Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
        return X3, Y3, Z3


class Curve:
    """A short-Weierstrass curve with cofactor 1: the SM2 recommended curve, or (for the
    standard's worked examples only) its test curve."""

    def __init__(self, name: str, p: int, a: int, b: int, n: int, gx: int, gy: int):
        self.name, self.p, self.a, self.b, self.n, self.gx, self.gy = name, p, a, b, n, gx, gy
        self.fp = CurveFp(p, a, b, 1)
        # python-ecdsa reduces a scalar modulo 2·order before multiplying. Declaring the
        # generator's "order" as n·2^(BLINDING_BITS+1) keeps a blinded scalar k + m·n intact (and
        # sizes the precomputed table for it); the real order is still n, so the product is k·G.
        self.g_blinded = PointJacobi(self.fp, gx, gy, 1, n << (BLINDING_BITS + 1), generator=True)
        self.g_public = PointJacobi(self.fp, gx, gy, 1, n, generator=True)
        self.point_class = _PointA3 if (a + 3) % p == 0 else PointJacobi

    def point(self, x: int, y: int, **kwargs) -> PointJacobi:
        return self.point_class(self.fp, x, y, 1, **kwargs)

    def __repr__(self) -> str:
        return f"<Curve {self.name}>"


SM2P256 = Curve(
    "sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)
N = SM2P256.n
G = SM2P256.g_blinded


class SM2Error(ValueError):
    """A key, point, scalar or signature that is not valid SM2."""


def _to_int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _i2b(x: int) -> bytes:
    return int(x).to_bytes(32, "big")


def check_scalar(k: int, name: str = "scalar", curve: Curve = SM2P256) -> int:
    if not isinstance(k, int) or not 1 <= k <= curve.n - 1:
        raise SM2Error(f"{name} is outside [1, n-1]")
    return k


def check_point(x: int, y: int, curve: Curve = SM2P256) -> PointJacobi:
    """The affine point (x, y) as a curve point, if it is on the curve (cofactor 1: in the group)."""
    p = curve.p
    if not (0 <= x < p and 0 <= y < p) or (y * y - (x * x * x + curve.a * x + curve.b)) % p != 0:
        raise SM2Error("point is not on the SM2 curve")
    return curve.point(x, y)


def affine(point) -> tuple[int, int]:
    if point == INFINITY:
        raise SM2Error("point at infinity")
    return int(point.x()), int(point.y())


def random_scalar(curve: Curve = SM2P256) -> int:
    return secrets.randbelow(curve.n - 1) + 1


def mul_secret(k: int, point: PointJacobi | None = None, curve: Curve = SM2P256):
    """k·point (k·G if point is None) for a secret k, with scalar blinding."""
    blinded = k + secrets.randbits(BLINDING_BITS) * curve.n
    if point is None:
        return curve.g_blinded * blinded
    # Variable-base points carry no order, so python-ecdsa does not reduce the scalar.
    return point * blinded


def inv_secret(k: int, curve: Curve = SM2P256) -> int:
    """k⁻¹ mod n in time independent of k (Fermat, gmpy2.powmod_sec)."""
    check_scalar(k, curve=curve)
    return int(gmpy2.powmod_sec(k, curve.n - 2, curve.n))


_TABLE_KEYS = 256
_tables: OrderedDict[tuple, PointJacobi | None] = OrderedDict()


def _public_point(x: int, y: int, curve: Curve) -> PointJacobi:
    """The point, with a table of its doublings once the key has been seen before.

    A table (~40 KB, 1.3 ms to build) makes every later multiplication about twice as fast; the
    portal verifies the same few keys (CA, organisations, repeat signers) over and over, but a
    key seen once would only pay for it, so the table is built on the second sighting."""
    key = (x, y, curve.name)
    if key in _tables:
        _tables.move_to_end(key)
        if _tables[key] is None:
            _tables[key] = curve.point(x, y, order=curve.n, generator=True)
        return _tables[key]
    _tables[key] = None
    while len(_tables) > _TABLE_KEYS:
        _tables.popitem(last=False)
    return curve.point(x, y)


def mul_add_public(u: int, v: int, x: int, y: int, curve: Curve = SM2P256):
    """u·G + v·(x, y) for public scalars and a validated public point (verification)."""
    point = _public_point(x, y, curve)
    if point.order():  # both have tables: python-ecdsa multiplies each by its table and adds
        return curve.g_public.mul_add(u, point, v)
    # G's table plus a fast-doubling multiplication beats a joint NAF over plain doublings.
    return curve.g_public * u + point * v


@dataclass(frozen=True)
class PublicKey:
    x: int
    y: int
    curve: Curve = field(default=SM2P256, repr=False, compare=False)

    def __post_init__(self):
        check_point(self.x, self.y, self.curve)

    @classmethod
    def from_point(cls, point, curve: Curve = SM2P256) -> "PublicKey":
        return cls(*affine(point), curve)

    @classmethod
    def from_bytes(cls, data: bytes) -> "PublicKey":
        """Uncompressed encoding 04 ‖ X ‖ Y."""
        if len(data) != 65 or data[0] != 4:
            raise SM2Error("public key must be 65 bytes, uncompressed (04 ‖ X ‖ Y)")
        return cls(_to_int(data[1:33]), _to_int(data[33:]))

    @classmethod
    def from_hex(cls, value: str) -> "PublicKey":
        return cls.from_bytes(bytes.fromhex(value))

    def to_bytes(self) -> bytes:
        return b"\x04" + _i2b(self.x) + _i2b(self.y)

    def hex(self) -> str:
        return self.to_bytes().hex()

    @property
    def point(self) -> PointJacobi:
        return self.curve.point(self.x, self.y)

    def za(self, uid: bytes = DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)."""
        if len(uid) * 8 > 0xFFFF:
            raise SM2Error("user ID too long")
        c = self.curve
        fields = (c.a, c.b, c.gx, c.gy, self.x, self.y)
        return sm3((len(uid) * 8).to_bytes(2, "big") + uid + b"".join(map(_i2b, fields)))

    def digest(self, message: bytes, uid: bytes = DEFAULT_ID) -> int:
        """e = SM3(Z_A ‖ M) as an integer."""
        return _to_int(sm3(self.za(uid) + message))

    def verify_digest(self, e: int, r: int, s: int) -> bool:
        """GB/T 32918.2 §7.1 on a precomputed e."""
        n = self.curve.n
        if not (1 <= r <= n - 1 and 1 <= s <= n - 1):
            return False
        t = (r + s) % n
        if t == 0:
            return False
        point = mul_add_public(s, t, self.x, self.y, self.curve)
        if point == INFINITY:
            return False
        return (e + int(point.x())) % n == r

    def verify(self, message: bytes, signature: bytes, uid: bytes = DEFAULT_ID) -> bool:
        """Check a DER SEQUENCE{r, s} signature over message."""
        try:
            r, s = decode_signature(signature, self.curve)
        except SM2Error:
            return False
        return self.verify_digest(self.digest(message, uid), r, s)


class PrivateKey:
    """An SM2 private key d ∈ [1, n−2] (1 + d must be invertible)."""

    __slots__ = ("_d", "curve", "public_key")

    def __init__(self, d: int, curve: Curve = SM2P256):
        if not isinstance(d, int) or not 1 <= d <= curve.n - 2:
            raise SM2Error("private key is outside [1, n-2]")
        self._d, self.curve = d, curve
        self.public_key = PublicKey.from_point(mul_secret(d, curve=curve), curve)

    def __repr__(self) -> str:  # never show the secret
        return f"<SM2 PrivateKey for {self.public_key.hex()[2:18]}…>"

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
        """GB/T 32918.2 §6.1 on a precomputed e. A fixed k is for the standard's examples only."""
        d, n = self._d, self.curve.n
        inv_1d = inv_secret(d + 1, self.curve)
        while True:
            nonce = check_scalar(k, "nonce", self.curve) if k is not None else random_scalar(self.curve)
            x1 = int(mul_secret(nonce, curve=self.curve).x())
            r = (e + x1) % n
            s = inv_1d * (nonce - r * d) % n
            if r != 0 and r + nonce != n and s != 0:
                return r, s
            if k is not None:
                raise SM2Error("the given nonce gives r = 0, r + k = n or s = 0")

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID) -> bytes:
        """DER SEQUENCE{r, s} over SM3(Z_A ‖ message)."""
        return encode_signature(*self.sign_digest(self.public_key.digest(message, uid)))


class _SM2Signature(Sequence):
    _fields = [("r", Integer), ("s", Integer)]


def encode_signature(r: int, s: int) -> bytes:
    return _SM2Signature({"r": r, "s": s}).dump()


def decode_signature(der: bytes, curve: Curve = SM2P256) -> tuple[int, int]:
    """Parse DER SEQUENCE{r, s}, refusing anything but the one minimal encoding."""
    try:
        parsed = _SM2Signature.load(der, strict=True)
        r, s = parsed["r"].native, parsed["s"].native
    except (ValueError, TypeError) as e:
        raise SM2Error(f"not a DER SM2 signature: {e}") from None
    if not (isinstance(r, int) and isinstance(s, int)) or encode_signature(r, s) != der:
        raise SM2Error("SM2 signature is not minimally DER-encoded")
    if not (1 <= r <= curve.n - 1 and 1 <= s <= curve.n - 1):
        raise SM2Error("SM2 signature values are out of range")
    return r, s
