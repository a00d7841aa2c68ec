"""ASN.1 glue for the national algorithms: OIDs registered in asn1crypto, SM2 keys in the
standard encodings (SubjectPublicKeyInfo, PKCS#8), and algorithm identifiers.

asn1crypto 1.5 knows none of the SM OIDs; `register()` (run on import) adds them to its maps so
certificates, CSRs, CRLs and CMS structures that use them parse and serialise by name.
"""

from asn1crypto import algos, cms, keys

from portal.crypto.sm2 import PrivateKey, PublicKey, SM2Error

SM2 = "1.2.156.10197.1.301"  # curve, and key algorithm in some older stacks
SM2_SIGN = "1.2.156.10197.1.301.1"  # GM/T 0010 "SM2-1" digest-encryption algorithm
SM3 = "1.2.156.10197.1.401"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
GM_DATA = "1.2.156.10197.6.1.4.2.1"  # GM/T 0010 content types
GM_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"


def _add(enum_class, oid: str, name: str) -> None:
    # Extend the reverse map in place: rebuilding it from _map would re-resolve names that
    # asn1crypto maps from two OIDs (e.g. sha1_dsa) and change what they encode to.
    enum_class._map.setdefault(oid, name)
    if enum_class._reverse_map is not None:
        enum_class._reverse_map.setdefault(name, oid)


def register() -> None:
    _add(algos.DigestAlgorithmId, SM3, "sm3")
    _add(algos.SignedDigestAlgorithmId, SM2_WITH_SM3, "sm2_sm3")
    _add(algos.SignedDigestAlgorithmId, SM2_SIGN, "sm2_sign")
    keys.NamedCurve.register("sm2p256v1", SM2, 32)
    _add(cms.ContentType, GM_DATA, "gm_data")
    _add(cms.ContentType, GM_SIGNED_DATA, "gm_signed_data")


register()


def sm2_with_sm3_algorithm() -> algos.SignedDigestAlgorithm:
    """sm2-with-sm3 with parameters absent, as OpenSSL writes it."""
    return algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})


def sm3_algorithm() -> algos.DigestAlgorithm:
    return algos.DigestAlgorithm({"algorithm": "sm3"})


def public_key_info(public_key: PublicKey) -> keys.PublicKeyInfo:
    """SubjectPublicKeyInfo: id-ecPublicKey with the SM2 named curve, uncompressed point."""
    return keys.PublicKeyInfo(
        {
            "algorithm": keys.PublicKeyAlgorithm(
                {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value="sm2p256v1")}
            ),
            "public_key": public_key.to_bytes(),
        }
    )


def is_sm2_key(info: keys.PublicKeyInfo) -> bool:
    algorithm = info["algorithm"]
    if algorithm["algorithm"].dotted == SM2:  # tolerated: the SM2 OID in the algorithm slot
        return True
    params = algorithm["parameters"]
    return algorithm["algorithm"].native == "ec" and params.name == "named" and params.chosen.dotted == SM2


def public_key_from_info(info: keys.PublicKeyInfo | bytes) -> PublicKey:
    if isinstance(info, bytes):
        info = keys.PublicKeyInfo.load(info)
    if not is_sm2_key(info):
        raise SM2Error("not an SM2 public key")
    return PublicKey.from_bytes(bytes(info["public_key"]))


def private_key_to_pkcs8(private_key: PrivateKey) -> bytes:
    """PKCS#8 PrivateKeyInfo (unencrypted DER), for tools like OpenSSL in tests."""
    ec = keys.ECPrivateKey(
        {
            "version": "ecPrivkeyVer1",
            "private_key": int.from_bytes(private_key.to_bytes(), "big"),
            "public_key": private_key.public_key.to_bytes(),
        }
    )
    return keys.PrivateKeyInfo(
        {
            "version": 0,
            "private_key_algorithm": keys.PrivateKeyAlgorithm(
                {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value="sm2p256v1")}
            ),
            "private_key": ec,
        }
    ).dump()


def private_key_from_der(der: bytes) -> PrivateKey:
    """An SM2 key from PKCS#8 or SEC1 ECPrivateKey DER (what OpenSSL writes for SM2 keys)."""
    try:
        info = keys.PrivateKeyInfo.load(der)
        algorithm = info["private_key_algorithm"]
        if algorithm["algorithm"].native != "ec" or algorithm["parameters"].chosen.dotted != SM2:
            raise SM2Error("not an SM2 private key")
        ec = info["private_key"].parsed
    except ValueError:
        ec = keys.ECPrivateKey.load(der)
        params = ec["parameters"]
        if params.native is not None and params.chosen.dotted != SM2:
            raise SM2Error("not an SM2 private key") from None
    return PrivateKey(ec["private_key"].native)


def pem(der: bytes, label: str) -> str:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def unpem(text: str | bytes) -> bytes:
    from asn1crypto import pem as asn1_pem

    data = text.encode() if isinstance(text, str) else text
    if asn1_pem.detect(data):
        return asn1_pem.unarmor(data)[2]
    return data
