"""Periodic upkeep."""

from portal import audit


class AuditChainBroken(RuntimeError):
    pass


def verify_audit_chain():
    """Re-derive the audit chain; a break fails the job, so it shows as a JobFailure."""
    count, problems = audit.verify_chain()
    if problems:
        raise AuditChainBroken("; ".join(f"event {p.seq}: {p.message}" for p in problems))
    return count
