"""The audit trail is append-only and chained by SM3: any edit or deletion is detected."""

import threading

import pytest

from portal import audit
from portal.audit.models import Event
from portal.crypto.sm3 import sm3
from portal.db import database

pytestmark = pytest.mark.both_databases


def record_three(actor=None):
    return [audit.record(actor, "task.created", f"task:t{i}", {"title": f"文件{i}"}) for i in range(3)]


def test_each_event_hashes_the_previous_hash_and_itself(app):
    first, second, _ = record_three()
    assert first.seq == 1 and second.seq == 2
    assert second.prev_hash == first.hash
    assert second.hash == sm3(bytes.fromhex(first.hash) + audit.services._canonical(second)).hex()
    assert audit.verify_chain() == (3, [])


def test_an_event_remembers_the_actor_and_where_from(app, demo):
    from portal.accounts.models import User

    user = User.get(User.username == "zhangwei")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        event = audit.record(user, "document.uploaded", "document:abc", {"name": "合同.pdf"})
    event = Event.get_by_id(event.id)
    assert (event.actor_name, event.actor_public_id, event.ip) == ("张伟", user.public_id, "10.1.2.3")
    assert event.data == {"name": "合同.pdf"}


def test_editing_an_audit_event_is_detected(app):
    record_three()
    Event.update(data={"title": "篡改"}).where(Event.seq == 2).execute()
    count, problems = audit.verify_chain()
    assert [(p.seq, p.message) for p in problems] == [(2, "content was edited")]


def test_deleting_an_audit_event_is_detected(app):
    record_three()
    Event.delete().where(Event.seq == 2).execute()
    _, problems = audit.verify_chain()
    assert {p.seq for p in problems} == {2, 3}


def test_deleting_the_last_event_is_detected(app):
    record_three()
    Event.delete().where(Event.seq == 3).execute()
    _, problems = audit.verify_chain()
    assert "chain head expects 3 events, found 2" in [p.message for p in problems]


def test_recomputing_a_forged_event_breaks_the_next_link(app):
    record_three()
    forged = Event.get(Event.seq == 2)
    forged.data = {"title": "伪造"}
    forged.hash = audit.services._link(forged.prev_hash, forged)
    forged.save()
    _, problems = audit.verify_chain()
    assert [(p.seq, p.message) for p in problems] == [(3, "does not link to the previous event")]


def test_an_event_rolled_back_with_its_change_leaves_no_trace(app):
    with pytest.raises(RuntimeError), database.atomic():
        audit.record(None, "task.created", "task:x")
        raise RuntimeError("the change failed")
    audit.record(None, "task.created", "task:y")
    assert [e.seq for e in Event.select()] == [1]
    assert audit.verify_chain() == (1, [])


def test_concurrent_writers_keep_one_chain(app):
    errors = []

    def writer(n):
        try:
            with database.connection_context():
                for i in range(8):
                    audit.record(None, "task.created", f"task:{n}-{i}")
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert audit.verify_chain() == (32, [])


def test_flask_audit_verify_reports_tampering(app):
    record_three()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "intact: 3 events" in result.output

    Event.update(action="task.deleted").where(Event.seq == 1).execute()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "event 1: content was edited" in result.output
