"""SM2 curve multiplications in OpenSSL's libcrypto, through ctypes.

Two operations, on the SM2 recommended curve only (OpenSSL's NID_sm2):

* `mul(k, x, y)`: k·(x, y) for a secret k. With one point and no generator term, EC_POINT_mul
  runs OpenSSL's Montgomery ladder (`ossl_ec_scalar_mul_ladder`), which is constant-time in k:
  no blinding is needed, and none is applied (the ladder would reduce a blinded scalar anyway).
* `mul_add(a, b, x, y)`: a·G + b·(x, y) for public scalars (verification, proof checks), which
  OpenSSL computes with a joint wNAF.

Python's big integers spend about 1.3 µs on each point doubling, so a variable-base multiplication
costs ~0.45 ms in python-ecdsa against ~0.2 ms here; the two-party protocol makes several of them
per signature (DESIGN.md §7's ≤ 5× target). The EC_POINT API is deprecated in OpenSSL 3 in favour
of EVP_PKEY, which has no raw point multiplication; it is still exported by every OpenSSL 3.x.

Each call has its own BN_CTX, points and numbers, freed before returning; the EC_GROUP is made
once and only read afterwards, which OpenSSL allows from several threads (ctypes releases the GIL
during the call). Scalars go in as 32 big-endian bytes; nothing secret is kept after a call
beyond what the C library frees (OpenSSL clears BIGNUMs on BN_clear_free).
"""

import ctypes
import ctypes.util

_NID_SM2 = 1172
_UNCOMPRESSED = 4
_P = ctypes.c_void_p


class Unavailable(ImportError):
    """libcrypto is missing or has no SM2 curve."""


def _load():
    name = ctypes.util.find_library("crypto")
    if not name:
        raise Unavailable("libcrypto (OpenSSL 3) was not found; install the libssl3 package")
    lib = ctypes.CDLL(name)
    signatures = {
        "EC_GROUP_new_by_curve_name": (_P, [ctypes.c_int]),
        "EC_POINT_new": (_P, [_P]),
        "EC_POINT_clear_free": (None, [_P]),
        "EC_POINT_oct2point": (ctypes.c_int, [_P, _P, ctypes.c_char_p, ctypes.c_size_t, _P]),
        "EC_POINT_point2oct": (ctypes.c_size_t, [_P, _P, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, _P]),
        "EC_POINT_is_at_infinity": (ctypes.c_int, [_P, _P]),
        "EC_POINT_mul": (ctypes.c_int, [_P, _P, _P, _P, _P, _P]),
        "BN_bin2bn": (_P, [ctypes.c_char_p, ctypes.c_int, _P]),
        "BN_clear_free": (None, [_P]),
        "BN_CTX_new": (_P, []),
        "BN_CTX_free": (None, [_P]),
    }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    group = lib.EC_GROUP_new_by_curve_name(_NID_SM2)
    if not group:
        raise Unavailable("this OpenSSL has no SM2 curve")
    return lib, group


_lib, _group = _load()


def _bn(value: int):
    number = _lib.BN_bin2bn(value.to_bytes(32, "big"), 32, None)
    if not number:
        raise MemoryError("BN_bin2bn failed")
    return number


def _run(generator_scalar: int | None, point_scalar: int, x: int, y: int) -> tuple[int, int] | None:
    """generator_scalar·G + point_scalar·(x, y); None for the point at infinity. The caller has
    validated (x, y) and reduced the scalars to [0, n)."""
    ctx = _lib.BN_CTX_new()
    point = _lib.EC_POINT_new(_group)
    result = _lib.EC_POINT_new(_group)
    k = _bn(point_scalar)
    g = _bn(generator_scalar) if generator_scalar is not None else None
    try:
        if not (ctx and point and result):
            raise MemoryError("OpenSSL allocation failed")
        encoded = bytes([_UNCOMPRESSED]) + x.to_bytes(32, "big") + y.to_bytes(32, "big")
        if _lib.EC_POINT_oct2point(_group, point, encoded, 65, ctx) != 1:
            raise ValueError("OpenSSL refused the point")  # not on the curve: callers check first
        if _lib.EC_POINT_mul(_group, result, g, point, k, ctx) != 1:
            raise ValueError("EC_POINT_mul failed")
        if _lib.EC_POINT_is_at_infinity(_group, result):
            return None
        out = ctypes.create_string_buffer(65)
        if _lib.EC_POINT_point2oct(_group, result, _UNCOMPRESSED, out, 65, ctx) != 65:
            raise ValueError("EC_POINT_point2oct failed")
        raw = out.raw
        return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")
    finally:
        _lib.BN_clear_free(k)
        if g is not None:
            _lib.BN_clear_free(g)
        _lib.EC_POINT_clear_free(point)
        _lib.EC_POINT_clear_free(result)
        _lib.BN_CTX_free(ctx)


def mul(k: int, x: int, y: int) -> tuple[int, int] | None:
    """k·(x, y), constant-time in k (OpenSSL's ladder)."""
    return _run(None, k, x, y)


def mul_add(a: int, b: int, x: int, y: int) -> tuple[int, int] | None:
    """a·G + b·(x, y) for public a, b."""
    return _run(a, b, x, y)
