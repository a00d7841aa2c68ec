"""Background work: enqueue() runs a job on RQ when REDIS_URL is set, inline otherwise.

Both paths go through run_job(), so a job behaves the same in the embedded portal and in
production: it gets an app context and a database connection, and when it raises, a
JobFailure row records what broke (shown in 查看异常任务) before the error propagates.

Jobs take ids, never request state, and must be idempotent: enqueueing a job id that is
already queued or running returns that job instead of starting a second one, and a job
that already did its work must return early.
"""

import importlib
import logging
import traceback
from dataclasses import dataclass

import click
from flask import current_app, has_app_context
from flask.cli import AppGroup
from peewee import CharField, TextField

from portal.db import BaseModel, JSONField, UTCDateTimeField, database

log = logging.getLogger(__name__)

QUEUES = ("signing", "documents", "notify", "maintenance")
_ACTIVE = {"queued", "started", "deferred", "scheduled"}


class JobFailure(BaseModel):
    """A job that raised: what it was, what it was about, and the error."""

    job_id = CharField(max_length=128, index=True)
    name = CharField(max_length=128)  # dotted path of the job function
    args = JSONField(default=list)
    subject = CharField(max_length=96, null=True, index=True)  # e.g. "document:<public id>"
    error = TextField()
    traceback = TextField()
    created_at = UTCDateTimeField()


@dataclass
class JobHandle:
    id: str
    status: str  # queued | started | finished | failed …
    failure: JobFailure | None = None


def _resolve(name: str):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def run_job(name: str, args: list, job_id: str, subject: str | None = None):
    """Entry point for both RQ and inline runs."""
    if not has_app_context():  # a bare `rq worker`: build the app once per process
        from portal import create_app

        create_app().app_context().push()
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        return _resolve(name)(*args)
    except Exception as exc:
        if database.in_transaction():  # pragma: no cover - jobs use atomic() blocks
            database.rollback()
        JobFailure.create(
            job_id=job_id,
            name=name,
            args=list(args),
            subject=subject,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        raise
    finally:
        if opened:
            database.close()


def redis_connection():
    return current_app.extensions.get("redis")


def enqueue(
    func, *args, job_id: str, subject: str | None = None, queue: str = "signing", timeout: int = 600
) -> JobHandle:
    """Run func(*args) in the background. Call it after the transaction that made the work
    necessary has committed, so the job sees that work."""
    if database.in_transaction():
        raise RuntimeError("enqueue() inside a transaction: call it after commit")
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    name = f"{func.__module__}.{func.__qualname__}"
    conn = redis_connection()
    if conn is None:
        try:
            run_job(name, list(args), job_id, subject)
        except Exception:
            log.exception("inline job %s failed", job_id)
            failure = JobFailure.select().where(JobFailure.job_id == job_id).order_by(JobFailure.id.desc()).first()
            return JobHandle(job_id, "failed", failure)
        return JobHandle(job_id, "finished")

    from rq import Queue
    from rq.exceptions import DuplicateJobError
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    q = Queue(queue, connection=conn)
    for _ in range(2):
        try:
            q.enqueue_call(
                run_job,
                args=(name, list(args), job_id, subject),
                job_id=job_id,
                timeout=timeout,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
                unique=True,
            )
            return JobHandle(job_id, "queued")
        except DuplicateJobError:
            existing = Job.fetch(job_id, connection=conn)
            status = _status(existing, refresh=False)
            if status == "started":
                # A worker killed mid-job leaves its job "started" until RQ's periodic maintenance
                # (every 10 minutes) notices that its heartbeat stopped; asking now fails an
                # abandoned job at once, so it runs again (jobs are idempotent).
                StartedJobRegistry(queue, connection=conn).cleanup()
                status = _status(existing, refresh=True)
            if status in _ACTIVE:
                return JobHandle(job_id, status)
            existing.delete()  # finished or failed before: run it again (it is idempotent)
    raise RuntimeError(f"could not enqueue {job_id}")


def _status(job, *, refresh: bool) -> str:
    status = job.get_status(refresh=refresh)
    return getattr(status, "value", status)  # an enum in recent RQ


def init_app(app):
    if app.config["REDIS_URL"]:
        import redis

        app.extensions["redis"] = redis.Redis.from_url(app.config["REDIS_URL"])


cli = AppGroup("jobs", help="Background job commands.")


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker_command(burst):
    """Start an RQ worker on every queue (needs REDIS_URL)."""
    from rq import Worker

    conn = redis_connection()
    if conn is None:
        raise click.ClickException("REDIS_URL is not set: jobs run inline, no worker is needed")
    Worker(list(QUEUES), connection=conn).work(burst=burst)
