"""School CA, issued certificates, CRL, trust anchors and the key store."""
