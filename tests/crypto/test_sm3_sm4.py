"""SM3 digests and SM4-GCM encryption, as the standards and OpenSSL define them."""

import io
import subprocess

import pytest

from portal.crypto import sm4
from portal.crypto.sm3 import sm3, sm3_stream


def test_sm3_matches_the_standards_examples():
    # GB/T 32905-2016 Annex A.
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm3_streams_a_large_file_to_the_same_digest_as_openssl(tmp_path):
    data = bytes(range(256)) * 20000  # 5 MB, several chunks
    (tmp_path / "big").write_bytes(data)
    assert sm3_stream(io.BytesIO(data)) == sm3(data)
    out = subprocess.run(["openssl", "dgst", "-sm3", "-r", tmp_path / "big"], capture_output=True, text=True).stdout
    assert out.split()[0] == sm3(data).hex()


def test_sm4_gcm_round_trips_and_uses_a_fresh_nonce():
    key = bytes(range(16))
    first, second = (sm4.encrypt(key, b"110101199003074578", b"id-number") for _ in range(2))
    assert first != second
    assert sm4.decrypt(key, first, b"id-number") == b"110101199003074578"


def test_sm4_matches_the_standards_block_example():
    # GB/T 32907-2016 Annex A: one block, key = plaintext = 0123456789abcdeffedcba9876543210.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    block = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(block), modes.ECB()).encryptor()
    assert (encryptor.update(block) + encryptor.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


@pytest.mark.parametrize("change", ["ciphertext", "aad", "key"])
def test_tampering_with_an_sm4_blob_is_detected(change):
    key = bytes(16)
    blob = sm4.encrypt(key, b"secret share", b"key-share")
    if change == "ciphertext":
        blob = blob[:15] + bytes([blob[15] ^ 1]) + blob[16:]
    with pytest.raises(sm4.SM4Error):
        sm4.decrypt(b"\x01" * 16 if change == "key" else key, blob, b"org-key" if change == "aad" else b"key-share")
