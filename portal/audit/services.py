"""record() appends to the chained log; verify_chain() re-derives every link."""

import json
from dataclasses import dataclass

from flask import has_request_context, request

from portal.audit.models import AuditHead, Event
from portal.crypto.sm3 import sm3
from portal.db import database, utcnow

GENESIS = "0" * 64


def _canonical(event: Event) -> bytes:
    fields = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor": event.actor_public_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "subject": event.subject,
        "data": event.data,
        "ip": event.ip,
    }
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _link(prev_hash: str, event: Event) -> str:
    return sm3(bytes.fromhex(prev_hash) + _canonical(event)).hex()


def record(actor, action: str, subject: str, data: dict | None = None) -> Event:
    """Append an event. Call it inside the service's transaction so the change and its
    record commit together. `actor` is a User or None for the system."""
    with database.atomic():
        # The UPDATE takes the write lock first (row lock on PostgreSQL, database lock on
        # SQLite), so reading the head below cannot race another append.
        bump = AuditHead.update(seq=AuditHead.seq + 1).where(AuditHead.id == 1)
        if not bump.execute():  # the very first event: make the head, racing writers may tie
            AuditHead.insert(id=1, seq=0, hash=GENESIS).on_conflict_ignore().execute()
            bump.execute()
        head = AuditHead.get_by_id(1)
        ip = request.remote_addr if has_request_context() else None
        event = Event(
            seq=head.seq,
            created_at=utcnow(),
            actor=actor,
            actor_public_id=actor.public_id if actor else None,
            actor_name=actor.name if actor else "系统",
            action=action,
            subject=subject,
            data=data or {},
            ip=ip,
            prev_hash=head.hash,
        )
        event.hash = _link(head.hash, event)
        event.save()
        AuditHead.update(hash=event.hash).where(AuditHead.id == 1).execute()
    return event


@dataclass
class ChainProblem:
    seq: int
    message: str


def verify_chain() -> tuple[int, list[ChainProblem]]:
    """Walk the log in order. Returns (events checked, problems): an edited event breaks its
    own hash, a deleted one leaves a gap, a deleted tail disagrees with the head."""
    problems: list[ChainProblem] = []
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for event in Event.select().order_by(Event.seq).iterator():
        count += 1
        if event.seq != expected_seq:
            problems.append(ChainProblem(expected_seq, f"events {expected_seq}..{event.seq - 1} are missing"))
        if event.prev_hash != prev_hash:
            problems.append(ChainProblem(event.seq, "does not link to the previous event"))
        if _link(event.prev_hash, event) != event.hash:
            problems.append(ChainProblem(event.seq, "content was edited"))
        prev_hash, expected_seq = event.hash, event.seq + 1
    head = AuditHead.get_or_none(AuditHead.id == 1)
    if head and (head.seq != expected_seq - 1 or head.hash != prev_hash):
        problems.append(ChainProblem(head.seq, f"chain head expects {head.seq} events, found {expected_seq - 1}"))
    return count, problems
