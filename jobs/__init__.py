"""RQ entry points. Thin and idempotent: they take ids and call services.

Enqueue them with portal.jobs.enqueue(), which runs them on RQ or inline.
"""
