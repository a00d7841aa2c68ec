"""Public online verification (在线验证) and the signing report."""
