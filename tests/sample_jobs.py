"""Jobs for the job-runner tests; importable by name from a worker."""

from portal import audit


def record_event(subject):
    audit.record(None, "test.job_ran", subject)


def fail(subject):
    raise ValueError(f"could not process {subject}")
