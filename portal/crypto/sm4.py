"""SM4-GCM (authenticated encryption) through OpenSSL, for every secret at rest."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

NONCE_SIZE, TAG_SIZE = 12, 16


class SM4Error(ValueError):
    """Wrong key, tampered ciphertext, or wrong associated data."""


def _check_key(key: bytes) -> None:
    if len(key) != 16:
        raise SM4Error("SM4 keys are 16 bytes")


def encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """nonce ‖ ciphertext ‖ tag, with a fresh random 96-bit nonce."""
    _check_key(key)
    nonce = os.urandom(NONCE_SIZE)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return nonce + encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    _check_key(key)
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise SM4Error("ciphertext too short")
    nonce, body, tag = blob[:NONCE_SIZE], blob[NONCE_SIZE:-TAG_SIZE], blob[-TAG_SIZE:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(body) + decryptor.finalize()
    except InvalidTag:
        raise SM4Error("SM4-GCM authentication failed") from None
