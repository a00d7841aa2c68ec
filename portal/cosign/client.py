"""The Python reference client: what the phone does, driven in-process against protocol.py.

Tests of every later feature use it to make real two-party signatures in one call:

    client = CosignClient.enrol(user)              # keygen: d1 here, d2 wrapped on the server
    der = client.sign(b"any bytes", {"purpose": "csr"})   # DER SEQUENCE{r, s}, verified by both sides
    sign = client.signer({"purpose": "csr"})       # the same as a callable, for code that takes
    der = sign(certification_request_info_der)      # a signer (e.g. the CSR proof of possession)

Each protocol step is also a method (keygen_message, commit, finish), so tests can stand
between the steps and play a misbehaving phone or server. The browser client (static/js) does
the same steps and is checked against the same golden vectors.
"""

from collections.abc import Callable

from portal.cosign import protocol
from portal.cosign.models import CosignSession
from portal.crypto.sm2 import PublicKey, encode_signature
from portal.crypto.sm2_2p import ClientNonce, ClientShare, RestartProtocol, TwoPartyError, keygen_context, sign_context

# A restart happens with probability about 2/n per run; a third in a row means something is wrong.
MAX_RUNS = 3


class CosignClient:
    """The phone: holds d1 for one user's key share and the joint public key P."""

    __slots__ = ("key_share", "public_key", "share", "user")

    def __init__(self, share: ClientShare, user, key_share, public_key: PublicKey):
        self.share, self.user, self.key_share, self.public_key = share, user, key_share, public_key

    def __repr__(self) -> str:  # never show d1
        return f"<CosignClient {self.key_share.public_id} P={self.public_key.hex()[2:18]}…>"

    # --- key generation ---

    @staticmethod
    def keygen_message(share: ClientShare, user) -> tuple[bytes, bytes]:
        """Step 1 of key generation: (P1, proof of knowledge of d1⁻¹), bound to the user."""
        return share.p1.to_bytes(), share.keygen_proof(keygen_context(user.public_id)).to_bytes()

    @classmethod
    def enrol(cls, user) -> "CosignClient":
        """A fresh d1 and a new key share on the server for `user`."""
        share = ClientShare.generate()
        key_share, public_key = protocol.create_key_share(user, *cls.keygen_message(share, user))
        return cls(share, user, key_share, public_key)

    # --- signing, step by step ---

    def commit(self, session: CosignSession) -> ClientNonce:
        """Step 1 of signing: a fresh k1, Q1 = k1·G and its proof for this session."""
        return self.share.begin_sign(sign_context(session.token, int(session.digest, 16)))

    def finish(self, session: CosignSession, nonce: ClientNonce, response: tuple[int, int, int]) -> bytes:
        """Step 3 of signing: the DER signature from the server's (r, s2, s3), checked first."""
        r, s = self.share.finish_sign(nonce, self.public_key, int(session.digest, 16), tuple(response))
        return encode_signature(r, s)

    def sign_session(self, session: CosignSession) -> bytes:
        """Run a session someone opened (e.g. for a document) to completion; the DER signature.
        Raises RestartProtocol in the rare degenerate case: the caller opens a new session."""
        nonce = self.commit(session)
        response = protocol.answer(session.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())
        der = self.finish(session, nonce, response)
        protocol.complete(session.token, der)
        return der

    # --- signing in one call ---

    def sign(self, message: bytes, context: dict | None = None) -> bytes:
        """A two-party signature over arbitrary bytes (SM3 with Z_A of the joint key and the
        default ID), as DER. Checks that the server asks to sign the digest of this message."""
        expected = f"{self.public_key.digest(message):064x}"
        for _ in range(MAX_RUNS):
            session = protocol.open_session(self.user, self.key_share, message, context)
            if session.digest != expected:
                raise TwoPartyError("the server asks to sign a different digest than this message's")
            try:
                return self.sign_session(session)
            except RestartProtocol:
                continue
        raise TwoPartyError(f"no valid signature after {MAX_RUNS} runs")

    def signer(self, context: dict | None = None) -> Callable[[bytes], bytes]:
        """sign() as a function of the message alone."""
        return lambda message: self.sign(message, context)
