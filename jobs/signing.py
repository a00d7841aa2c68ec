"""Signing jobs: stamping and signing after the person confirmed on the phone."""

from portal.signing import single


def sign_single_task(sign_request_id: int) -> str:
    """Finish a single-party task whose SignRequest the phone completed (no-op once completed)."""
    return single.complete_signing(sign_request_id).status
