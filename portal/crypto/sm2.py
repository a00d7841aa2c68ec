"""SM2 digital signatures (GB/T 32918.2) on the recommended curve (GB/T 32918.5).

Z_A, signing and verification are ours; points are python-ecdsa's Jacobian points (gmpy2 inside).
The multiplications, which are nearly all of the time, go three ways on the recommended curve:

* k·G for a secret k (key generation, signing nonces, the two-party commitments): a fixed-base
  comb over G (`_Comb`: 41 windows of 8 bits, 10 455 precomputed affine points, built once per
  process in ~30 ms), so one multiplication is 41 mixed additions and no doublings. The scalar is
  blinded first: k + m·n with a fresh random m of 64 bits gives the same point but a different
  walk through the table on every call, because Python's integers are not constant-time.
* k·Q for a secret k and another point Q (the two-party protocol's k3·Q1 and d2⁻¹·P1): OpenSSL's
  constant-time Montgomery ladder (`openssl_ec.mul`), about twice as fast as python-ecdsa.
* u·G + v·Q for public scalars (verification, proof checks): OpenSSL's joint wNAF
  (`openssl_ec.mul_add`), or, for a key verified again and again, G's comb plus a smaller comb of
  the key's own (`_key_comb`).

The standard's test curve, used only for its worked examples, goes through python-ecdsa with the
same blinding. Further:

* every secret is inverted with gmpy2.powmod_sec (Fermat), whose running time does not depend
  on the value;
* every point received from outside is validated (on the curve, not infinity) and every scalar
  is range-checked, before it meets a secret.

That is the threat model for software keys; a hardware key store (PKCS#11 / GM/T 0018 SDF)
replaces this module for CA and organisation keys where one is available.
"""

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import gmpy2
from asn1crypto.core import Integer, Sequence
from ecdsa.ellipticcurve import INFINITY, CurveFp, PointJacobi
from gmpy2 import mpz

from portal.crypto import openssl_ec
from portal.crypto.sm3 import sm3

DEFAULT_ID = b"1234567812345678"  # GM/T 0009 default user ID
BLINDING_BITS = 64


def _double_a3(X1, Y1, Z1, p):
    """2·(X1 : Y1 : Z1) on a curve with a = −3 (the SM2 curve), by dbl-2001-b: 3M + 5S instead of
    the general formula's extra squaring and multiplication by a. (0, 0, 0) is infinity."""
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


class _PointA3(PointJacobi):
    """A Jacobian point on a curve with a = −3, doubling by `_double_a3` (about 18% off a
    python-ecdsa variable-base multiplication)."""

    def _double(self, X1, Y1, Z1, p, a):
        return _double_a3(X1, Y1, Z1, p)


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
    """k·point (k·G if point is None) for a secret k (see the module's notes)."""
    if curve is SM2P256:
        if point is None:
            return _generator_comb().mul(k + secrets.randbits(BLINDING_BITS) * curve.n)
        return _from_openssl(openssl_ec.mul(k % curve.n, *affine(point)), curve)
    blinded = k + secrets.randbits(BLINDING_BITS) * curve.n
    if point is None:
        return curve.g_blinded * blinded
    # Variable-base points carry no order, so python-ecdsa does not reduce the scalar.
    return point * blinded


def inv_secret(k: int, curve: Curve = SM2P256) -> int:
    """k⁻¹ mod n in time independent of k (Fermat, gmpy2.powmod_sec)."""
    check_scalar(k, curve=curve)
    return int(gmpy2.powmod_sec(k, curve.n - 2, curve.n))


def mul_add_public(u: int, v: int, x: int, y: int, curve: Curve = SM2P256):
    """u·G + v·(x, y) for public scalars and a validated public point (verification)."""
    if curve is not SM2P256:
        return curve.g_public * u + curve.point(x, y) * v
    comb = _key_comb(x, y)
    if comb is None:
        return _from_openssl(openssl_ec.mul_add(u % curve.n, v % curve.n, x, y), curve)
    return _generator_comb().mul(u % curve.n) + comb.mul(v % curve.n)


def _from_openssl(xy: tuple[int, int] | None, curve: Curve):
    return INFINITY if xy is None else curve.point(*xy)


# --- the fixed-base comb over G -------------------------------------------------------------------


class _Comb:
    """k·B as a sum of one precomputed point per w-bit window of k: rows[i][d − 1] = d·2^(wi)·B,
    affine. Jacobian coordinates for the sum, mixed additions (madd-2007-bl, with doubling and
    the point at infinity handled); the curve has a = −3 (dbl-2001-b)."""

    def __init__(self, curve: Curve, x: int, y: int, bits: int, window: int):
        self.curve, self.p, self.WINDOW = curve, mpz(curve.p), window
        self.windows = -(-bits // self.WINDOW)
        base = (mpz(x), mpz(y))
        self.rows = []
        for _ in range(self.windows):
            multiples = [(base[0], base[1], mpz(1))]
            for _ in range((1 << self.WINDOW) - 2):
                multiples.append(self._madd(*multiples[-1], *base))
            self.rows.append(self._normalize(multiples))
            # the next row's base: 2^8 times this one's, i.e. (2^8 − 1)·base + base
            base = self._normalize([self._madd(*multiples[-1], *base)])[0]

    def mul(self, k: int) -> PointJacobi:
        if k >> (self.WINDOW * self.windows):
            raise ValueError("scalar too long for the comb")
        # _madd written out: this loop is most of a signature's time, and a call per addition
        # costs a third more. Z3 = 2·Z1·H is the same as the formula's (Z1 + H)² − Z1Z1 − HH.
        p, w, mask = self.p, self.WINDOW, (1 << self.WINDOW) - 1
        k = mpz(k)
        X = Y = Z = mpz(0)
        for row in self.rows:
            digit = k & mask
            k >>= w
            if not digit:
                continue
            x2, y2 = row[digit - 1]
            if not Z:
                X, Y, Z = x2, y2, mpz(1)
                continue
            ZZ = Z * Z % p
            H = (x2 * ZZ - X) % p
            r = 2 * (y2 * Z * ZZ - Y) % p
            if not H:  # the same point or its negative: never for an honest scalar below n·2^65
                X, Y, Z = self._madd(X, Y, Z, x2, y2)
                continue
            HH = H * H % p
            J = 4 * H * HH % p
            V = 4 * X * HH % p
            X3 = (r * r - J - 2 * V) % p
            Y = (r * (V - X3) - 2 * Y * J) % p
            Z = 2 * Z * H % p
            X = X3
        if not Z:
            return INFINITY
        return self.curve.point_class(self.curve.fp, int(X), int(Y), int(Z))

    def _madd(self, X1, Y1, Z1, x2, y2):
        """(X1 : Y1 : Z1) + (x2, y2)."""
        p = self.p
        if not Z1:
            return x2, y2, mpz(1)
        Z1Z1 = Z1 * Z1 % p
        H = (x2 * Z1Z1 - X1) % p
        r = 2 * (y2 * Z1 * Z1Z1 - Y1) % p
        if not H:
            return _double_a3(X1, Y1, Z1, p) if not r else (mpz(0), mpz(1), mpz(0))
        HH = H * H % p
        J = 4 * H * HH % p
        V = 4 * X1 * HH % p
        X3 = (r * r - J - 2 * V) % p
        Y3 = (r * (V - X3) - 2 * Y1 * J) % p
        Z3 = ((Z1 + H) ** 2 - Z1Z1 - HH) % p
        return X3, Y3, Z3

    def _normalize(self, points):
        """Jacobian → affine for many points with one inversion (Montgomery's trick)."""
        p = self.p
        prefix, running = [], mpz(1)
        for _, _, z in points:
            prefix.append(running)
            running = running * z % p
        inverse = gmpy2.powmod(running, p - 2, p)
        affine_points = [None] * len(points)
        for i in range(len(points) - 1, -1, -1):
            X, Y, z = points[i]
            z_inv = inverse * prefix[i] % p
            inverse = inverse * z % p
            z_inv2 = z_inv * z_inv % p
            affine_points[i] = (X * z_inv2 % p, Y * z_inv2 * z_inv % p)
        return affine_points


_comb: _Comb | None = None
_comb_lock = threading.Lock()


def _generator_comb() -> _Comb:
    """The comb for SM2P256's G (8-bit windows), built on first use; blinded scalars have
    256 + 64 + 1 bits."""
    global _comb
    if _comb is None:
        with _comb_lock:
            if _comb is None:
                c = SM2P256
                _comb = _Comb(c, c.gx, c.gy, c.n.bit_length() + BLINDING_BITS + 1, window=8)
    return _comb


# Keys verified again and again (the school CA, organisations, a person's joint key at each
# co-signature) get a small comb of their own (4-bit windows: 960 points, ~170 KB, ~4 ms to
# build) on their second verification; a key seen once only pays OpenSSL's joint wNAF.
_KEY_COMBS = 64
_key_combs: OrderedDict[tuple[int, int], _Comb | None] = OrderedDict()


def _key_comb(x: int, y: int) -> _Comb | None:
    key = (x, y)
    with _comb_lock:
        if key not in _key_combs:
            _key_combs[key] = None
            while len(_key_combs) > _KEY_COMBS:
                _key_combs.popitem(last=False)
            return None
        _key_combs.move_to_end(key)
        comb = _key_combs[key]
    if comb is None:
        comb = _Comb(SM2P256, x, y, SM2P256.n.bit_length(), window=4)
        with _comb_lock:
            _key_combs[key] = comb
    return comb


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
