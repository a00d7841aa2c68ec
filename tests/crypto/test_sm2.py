"""SM2 sign and verify: the standard's worked example, and two independent implementations
(OpenSSL and gmssl) accepting our signatures and we theirs."""

import secrets
import subprocess

import pytest
from gmssl import sm2 as gmssl_sm2

from portal.crypto import asn1, sm2
from portal.crypto.sm2 import N, PrivateKey, PublicKey, SM2Error


def h(text: str) -> int:
    return int(text.replace(" ", ""), 16)


# GB/T 32918.2-2016 Annex A / GM/T 0003.2-2012 Annex A: a worked example on the standard's 256-bit
# test curve (not the recommended curve), with ID "ALICE123@YAHOO.COM".
TEST_CURVE = sm2.Curve(
    "gbt32918-annex-a",
    p=h("8542D69E 4C044F18 E8B92435 BF6FF7DE 45728391 5C45517D 722EDB8B 08F1DFC3"),
    a=h("787968B4 FA32C3FD 2417842E 73BBFEFF 2F3C848B 6831D7E0 EC65228B 3937E498"),
    b=h("63E4C6D3 B23B0C84 9CF84241 484BFE48 F61D59A5 B16BA06E 6E12D1DA 27C5249A"),
    n=h("8542D69E 4C044F18 E8B92435 BF6FF7DD 29772063 0485628D 5AE74EE7 C32E79B7"),
    gx=h("421DEBD6 1B62EAB6 746434EB C3CC315E 32220B3B ADD50BDC 4C4E6C14 7FEDD43D"),
    gy=h("0680512B CBB42C07 D47349D2 153B70C4 E5D7FDFC BFA36EA1 A85841B9 E46E09A2"),
)


def test_the_standards_worked_example_reproduces():
    key = PrivateKey(h("128B2FA8 BD433C6C 068C8D80 3DFF7979 2A519A55 171B1B65 0C23661D 15897263"), TEST_CURVE)
    pub, uid = key.public_key, b"ALICE123@YAHOO.COM"
    assert pub.x == h("0AE4C779 8AA0F119 471BEE11 825BE462 02BB79E2 A5844495 E97C04FF 4DF2548A")
    assert pub.y == h("7C0240F8 8F1CD4E1 6352A73C 17B7F16F 07353E53 A176D684 A9FE0C6B B798E857")
    assert pub.za(uid) == bytes.fromhex("F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A")
    e = pub.digest(b"message digest", uid)
    assert e == h("B524F552 CD82B8B0 28476E00 5C377FB1 9A87E6FC 682D48BB 5D42E3D9 B9EFFE76")
    k = h("6CB28D99 385C175C 94F94E93 4817663F C176D925 DD72B727 260DBAAE 1FB2F96F")
    r, s = key.sign_digest(e, k=k)
    assert r == h("40F1EC59 F793D9F4 9E09DCEF 49130D41 94F79FB1 EED2CAA5 5BACDB49 C4E755D1")
    assert s == h("6FC6DAC3 2C5D5CF1 0C77DFB2 0F7C2EB6 67A45787 2FB09EC5 6327A67E C7DEEBE7")
    assert pub.verify_digest(e, r, s)


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    """An SM2 key, with its public key as a PEM file for OpenSSL."""
    key = PrivateKey.generate()
    folder = tmp_path_factory.mktemp("sm2")
    (folder / "pub.pem").write_text(asn1.pem(asn1.public_key_info(key.public_key).dump(), "PUBLIC KEY"))
    (folder / "key.der").write_bytes(asn1.private_key_to_pkcs8(key))
    return key, folder


def openssl(*args, **kwargs):
    return subprocess.run(["openssl", *args], capture_output=True, **kwargs)


@pytest.mark.parametrize("message", [b"", b"abc", "关于举办学术会议的通知".encode(), secrets.token_bytes(5000)])
def test_openssl_verifies_our_signatures(keypair, message):
    key, folder = keypair
    (folder / "msg").write_bytes(message)
    (folder / "sig.der").write_bytes(key.sign(message))
    result = openssl(
        "dgst", "-sm3", "-verify", folder / "pub.pem", "-sigopt", "distid:1234567812345678",
        "-signature", folder / "sig.der", folder / "msg",
    )  # fmt: skip
    assert result.stdout.strip() == b"Verified OK", result.stderr


def test_we_verify_openssls_signatures(keypair):
    key, folder = keypair
    (folder / "msg2").write_bytes(b"signed by openssl")
    result = openssl(
        "dgst", "-sm3", "-sign", folder / "key.der", "-keyform", "DER", "-sigopt", "distid:1234567812345678",
        "-out", folder / "osig.der", folder / "msg2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    signature = (folder / "osig.der").read_bytes()
    assert key.public_key.verify(b"signed by openssl", signature)
    assert not key.public_key.verify(b"signed by someone else", signature)


def gmssl_key():
    # gmssl strips a leading "04" with str.lstrip, which also eats leading 0s and 4s of X: avoid those keys.
    while True:
        key = PrivateKey.generate()
        if key.public_key.hex()[2] not in "04":
            return key


def test_gmssl_verifies_our_signatures_and_we_verify_gmssls():
    key = gmssl_key()
    peer = gmssl_sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key=key.public_key.hex()[2:])
    ours = sm2.decode_signature(key.sign(b"contract"))
    assert peer.verify_with_sm3(f"{ours[0]:064x}{ours[1]:064x}", b"contract")
    theirs = peer.sign_with_sm3(b"contract")
    assert key.public_key.verify(b"contract", sm2.encode_signature(int(theirs[:64], 16), int(theirs[64:], 16)))


def test_a_signature_does_not_verify_for_another_message_key_or_id():
    key, other = PrivateKey.generate(), PrivateKey.generate()
    signature = key.sign(b"original")
    assert key.public_key.verify(b"original", signature)
    assert not key.public_key.verify(b"0riginal", signature)
    assert not other.public_key.verify(b"original", signature)
    assert not key.public_key.verify(b"original", signature, uid=b"ALICE123@YAHOO.COM")


def test_signatures_are_randomised_and_verify_on_precomputed_digests():
    key = PrivateKey.generate()
    e = key.public_key.digest(b"m")
    first, second = key.sign_digest(e), key.sign_digest(e)
    assert first != second
    assert key.public_key.verify_digest(e, *first) and key.public_key.verify_digest(e, *second)


def test_non_minimal_or_out_of_range_signatures_are_refused():
    key = PrivateKey.generate()
    r, s = sm2.decode_signature(key.sign(b"m"))
    padded = b"\x30" + bytes([len(sm2.encode_signature(r, s)) - 1]) + b"\x02\x21\x00" + r.to_bytes(32, "big")
    with pytest.raises(SM2Error):
        sm2.decode_signature(padded)
    with pytest.raises(SM2Error):
        sm2.decode_signature(sm2.encode_signature(r, N))
    assert not key.public_key.verify(b"m", sm2.encode_signature(r, 0))
    assert not key.public_key.verify_digest(key.public_key.digest(b"m"), r, N - r)  # r + s = n


@pytest.mark.parametrize(
    "point",
    [
        (sm2.SM2P256.gx, sm2.SM2P256.gy + 1),  # off the curve
        (0, 0),
        (sm2.SM2P256.p, sm2.SM2P256.gy),  # coordinate not reduced
    ],
)
def test_points_off_the_curve_are_refused(point):
    with pytest.raises(SM2Error):
        PublicKey(*point)


def test_keys_and_scalars_outside_their_range_are_refused():
    for d in (0, N - 1, N, -5):
        with pytest.raises(SM2Error):
            PrivateKey(d)
    with pytest.raises(SM2Error):
        PublicKey.from_bytes(b"\x02" + bytes(64))
    with pytest.raises(SM2Error):
        sm2.check_scalar(N)


def test_blinded_multiplication_gives_the_same_point():
    k = sm2.random_scalar()
    plain = sm2.SM2P256.g_public * k
    assert sm2.affine(sm2.mul_secret(k)) == sm2.affine(plain)
    point = PrivateKey.generate().public_key.point
    assert sm2.affine(sm2.mul_secret(k, point)) == sm2.affine(point * k)
    assert sm2.inv_secret(k) * k % N == 1


# The fast paths (G's comb, OpenSSL's ladder and joint wNAF, a repeated key's comb) against
# python-ecdsa's plain arithmetic, at random and at the edges of the scalar range.
EDGE_SCALARS = [1, 2, 3, 255, 256, 257, (1 << 128) + 1, N - 2, N - 1]


@pytest.mark.parametrize("k", EDGE_SCALARS + [sm2.random_scalar() for _ in range(20)])
def test_every_multiplication_path_agrees_with_plain_arithmetic(k):
    g = sm2.SM2P256.g_public
    assert sm2.affine(sm2.mul_secret(k)) == sm2.affine(g * k)
    assert sm2.affine(sm2._generator_comb().mul(k + N * ((1 << 65) - 1))) == sm2.affine(g * k)  # longest blinding
    q = PrivateKey.generate().public_key
    assert sm2.affine(sm2.mul_secret(k, q.point)) == sm2.affine(q.point * k)
    u = sm2.random_scalar()
    expected = sm2.affine(g * u + q.point * k)
    assert sm2.affine(sm2.mul_add_public(u, k, q.x, q.y)) == expected  # first sighting: OpenSSL
    assert sm2.affine(sm2.mul_add_public(u, k, q.x, q.y)) == expected  # again: the key's comb


def test_sums_that_reach_infinity_or_double_are_right():
    g = sm2.SM2P256.g_public
    minus_g = sm2.SM2P256.point(sm2.SM2P256.gx, sm2.SM2P256.p - sm2.SM2P256.gy)
    for _ in range(2):  # OpenSSL, then the comb of the repeated "key" −G
        assert sm2.mul_add_public(5, 5, *sm2.affine(minus_g)) == sm2.INFINITY
        assert sm2.affine(sm2.mul_add_public(3, N - 1, *sm2.affine(minus_g))) == sm2.affine(g * 4)
    assert sm2.mul_secret(N, g) == sm2.INFINITY  # OpenSSL's ladder reaching the point at infinity
    comb = sm2._generator_comb()
    assert sm2.affine(comb.mul(N + 1)) == sm2.affine(g)
    assert comb.mul(N) == sm2.INFINITY and comb.mul(0) == sm2.INFINITY
    # The addition's own special cases: the same point doubles, its negative cancels.
    gx, gy = sm2.SM2P256.gx, sm2.SM2P256.gy
    X, Y, Z = comb._madd(gx, gy, 1, gx, gy)
    assert sm2.affine(sm2.SM2P256.point_class(sm2.SM2P256.fp, int(X), int(Y), int(Z))) == sm2.affine(g * 2)
    assert comb._madd(gx, gy, 1, gx, sm2.SM2P256.p - gy)[2] == 0


def test_a_private_key_never_shows_its_secret():
    key = PrivateKey.generate()
    assert key.to_bytes().hex() not in repr(key) and str(int.from_bytes(key.to_bytes(), "big")) not in repr(key)


def test_public_keys_round_trip_through_subject_public_key_info():
    key = PrivateKey.generate()
    der = asn1.public_key_info(key.public_key).dump()
    assert der.startswith(bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200"))
    assert asn1.public_key_from_info(der) == key.public_key
