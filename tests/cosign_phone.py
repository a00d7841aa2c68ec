"""`Phone` plays the cosign app (协同签名) against portal/cosign/services.py the way
static/js/cosign-app.js does against the JSON API: activate with a code, check the PIN, confirm
sign requests (the math is the Python reference client's, portal/crypto/sm2_2p.py). Tests of the
signing flows use it to confirm the SignRequests they create. Also: verified people, a task."""

from datetime import timedelta

from portal.accounts.models import RealNameStatus, User
from portal.cosign import services
from portal.crypto.sm2 import encode_signature
from portal.crypto.sm2_2p import ClientShare, RestartProtocol, keygen_context, sign_context
from portal.crypto.sm3 import sm3
from portal.db import utcnow
from portal.signing.models import Document, Participant, Placement, Task

PIN = "abc123"


def verifier_of(pin: str, salt: bytes = b"salt of this test phone") -> bytes:
    """Stands in for cosign-client.js's pinVerifier: the server only ever sees 32 opaque bytes."""
    return sm3(salt + pin.encode())


class Phone:
    """The cosign app of one person: d1, the joint key, and the PIN it was set up with."""

    def __init__(self, user: User):
        self.user = user
        self.share = None
        self.key_share = None
        self.public_key = None
        self.pin = None
        self.certificate = None

    def activate(self, code: str, pin: str = PIN):
        """【确定】, set the PIN, co-sign the certificate request: the whole activation."""
        activation = self.begin_activation(code, pin)
        self.certificate = self.run(activation.session).certificate
        return activation

    def begin_activation(self, code: str, pin: str = PIN):
        """Up to the CSR session, which the caller runs (or not)."""
        share = ClientShare.generate()
        proof = share.keygen_proof(keygen_context(self.user.public_id)).to_bytes()
        activation = services.activate(self.user, code, share.p1.to_bytes(), proof, verifier_of(pin))
        self.share, self.key_share, self.public_key, self.pin = share, activation.key_share, activation.public_key, pin
        return activation

    def commit(self, session):
        nonce = self.share.begin_sign(sign_context(session.token, int(session.digest, 16)))
        response = services.answer(self.user, session.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())
        return nonce, response

    def finish(self, session, nonce, response) -> bytes:
        r, s = self.share.finish_sign(nonce, self.public_key, int(session.digest, 16), tuple(response))
        return encode_signature(r, s)

    def run(self, session):
        """One protocol session to its end, through the services; their Completion."""
        nonce, response = self.commit(session)
        return services.complete(self.user, session.token, self.finish(session, nonce, response))

    def unlock(self, pin: str | None = None) -> bytes:
        verifier = None if pin is None else verifier_of(pin)
        return services.unlock(self.user, services.current_key_share(self.user), verifier)

    def confirm(self, sign_request, pin: str | None = PIN):
        """确认签署: the PIN check (None: inside the auto-sign window), then every session."""
        self.unlock(pin)
        for _ in range(3):
            run = services.start_signing(self.user, sign_request.token)
            try:
                for _index, _label, session in run.sessions:
                    self.run(session)
                return run
            except RestartProtocol:
                continue
        raise AssertionError("no signature after three runs")


def activated_phone(user: User) -> Phone:
    """The person's cosign app with a certificate downloaded."""
    phone = Phone(user)
    phone.activate(services.issue_activation_code(user).code)
    return phone


def make_person(username: str, name: str, verified: bool = True) -> User:
    return User.create(
        username=username,
        name=name,
        real_name_status=RealNameStatus.VERIFIED if verified else RealNameStatus.UNVERIFIED,
        id_number_masked="1101**********1234" if verified else None,
    )


def make_task(initiator: User, signer: User, *, files=("合同.pdf", "附件一.pdf"), seals: int = 2) -> Participant:
    """A task with documents and the signer's placements, as the signing flows will make them."""
    now = utcnow()
    task = Task.create(kind="single", title="实验室安全责任书", business_type="单方签署", initiator=initiator,
                       created_at=now, updated_at=now)  # fmt: skip
    documents = [Document.create(task=task, name=name, original_blob="0" * 64, created_at=now) for name in files]
    participant = Participant.create(task=task, user=signer, status="to_sign", created_at=now)
    for i in range(seals):
        Placement.create(document=documents[i % len(documents)], participant=participant, page=1,
                         x=100, y=100, width=120, height=120, created_at=now)  # fmt: skip
    return participant


def make_request(participant, messages=(b"signed attributes 1",), lifetime=timedelta(minutes=30)):
    entries = [(m, f"第 {i + 1} 处签名") for i, m in enumerate(messages)]
    return services.create_sign_request(participant, participant.user, entries, lifetime=lifetime)
