"""Background jobs: inline by default, through a real RQ worker when Redis is configured."""

import time

import pytest
import sample_jobs
from rq import Queue, Worker

from jobs.maintenance import verify_audit_chain
from portal.audit.models import Event
from portal.db import database
from portal.jobs import QUEUES, JobFailure, enqueue, redis_connection

pytestmark = pytest.mark.both_databases


def ran(subject):
    return Event.select().where((Event.action == "test.job_ran") & (Event.subject == subject)).count()


def work_off_queues():
    """Run a forking RQ worker until the queues are empty, as `make worker` would."""
    database.close()  # a forked worker must not share this process's connection
    Worker([Queue(q, connection=redis_connection()) for q in QUEUES], connection=redis_connection()).work(burst=True)
    database.connect()


def test_without_redis_a_job_runs_inline(app):
    handle = enqueue(sample_jobs.record_event, "task:1", job_id="record-1")
    assert handle.status == "finished"
    assert ran("task:1") == 1


def test_a_failed_job_leaves_a_job_failure(app):
    handle = enqueue(sample_jobs.fail, "document:abc", job_id="fail-1", subject="document:abc")
    assert handle.status == "failed"
    failure = JobFailure.get(JobFailure.job_id == "fail-1")
    assert failure == handle.failure
    assert failure.subject == "document:abc"
    assert failure.name == "sample_jobs.fail"
    assert failure.error == "ValueError: could not process document:abc"
    assert "Traceback" in failure.traceback


def test_enqueue_inside_a_transaction_is_refused(app):
    with pytest.raises(RuntimeError, match="after commit"), database.atomic():
        enqueue(sample_jobs.record_event, "task:2", job_id="record-2")
    assert ran("task:2") == 0


def test_a_broken_audit_chain_fails_the_nightly_check(app):
    sample_jobs.record_event("task:3")
    assert enqueue(verify_audit_chain, job_id="audit", queue="maintenance").status == "finished"
    Event.update(subject="task:forged").execute()
    handle = enqueue(verify_audit_chain, job_id="audit", queue="maintenance")
    assert handle.status == "failed"
    assert "content was edited" in handle.failure.error


def test_with_redis_a_worker_runs_the_job(make_app, redis_url):
    make_app(REDIS_URL=redis_url)
    handle = enqueue(sample_jobs.record_event, "task:4", job_id="record-4")
    assert handle.status == "queued"
    assert ran("task:4") == 0
    work_off_queues()
    assert ran("task:4") == 1


def test_enqueueing_the_same_job_twice_runs_it_once(make_app, redis_url):
    make_app(REDIS_URL=redis_url)
    enqueue(sample_jobs.record_event, "task:5", job_id="record-5")
    assert enqueue(sample_jobs.record_event, "task:5", job_id="record-5").status == "queued"
    work_off_queues()
    assert ran("task:5") == 1
    # Finished jobs can be enqueued again (a retry); the job itself must be idempotent.
    assert enqueue(sample_jobs.record_event, "task:5", job_id="record-5").status == "queued"


def test_a_job_failing_on_the_worker_leaves_a_job_failure(make_app, redis_url):
    make_app(REDIS_URL=redis_url)
    enqueue(sample_jobs.fail, "document:xyz", job_id="fail-2", subject="document:xyz")
    work_off_queues()
    failure = JobFailure.get(JobFailure.job_id == "fail-2")
    assert failure.error == "ValueError: could not process document:xyz"
    assert failure.subject == "document:xyz"


def test_a_job_abandoned_by_a_killed_worker_runs_again_when_enqueued(make_app, redis_url):
    """A worker killed mid-job (kill -9) leaves the job "started" with a registry entry whose
    heartbeat has expired; enqueueing it again fails the abandoned run and queues a new one."""
    from rq.job import JobStatus
    from rq.registry import StartedJobRegistry

    make_app(REDIS_URL=redis_url)
    enqueue(sample_jobs.record_event, "task:6", job_id="record-6", queue="signing")
    connection = redis_connection()
    job = Queue("signing", connection=connection).fetch_job("record-6")
    Queue("signing", connection=connection).remove(job)
    job.set_status(JobStatus.STARTED)
    registry = StartedJobRegistry("signing", connection=connection)
    connection.zadd(registry.key, {f"{job.id}:killed-run": 1})  # its last heartbeat promised life until 1970
    assert enqueue(sample_jobs.record_event, "task:6", job_id="record-6", queue="signing").status == "queued"
    work_off_queues()
    assert ran("task:6") == 1


def test_a_running_job_is_not_started_twice(make_app, redis_url):
    from rq.job import JobStatus
    from rq.registry import StartedJobRegistry

    make_app(REDIS_URL=redis_url)
    enqueue(sample_jobs.record_event, "task:7", job_id="record-7", queue="signing")
    connection = redis_connection()
    queue = Queue("signing", connection=connection)
    job = queue.fetch_job("record-7")
    queue.remove(job)
    job.set_status(JobStatus.STARTED)
    registry = StartedJobRegistry("signing", connection=connection)
    connection.zadd(registry.key, {f"{job.id}:live-run": time.time() + 60})  # a fresh heartbeat
    assert enqueue(sample_jobs.record_event, "task:7", job_id="record-7", queue="signing").status == "started"
