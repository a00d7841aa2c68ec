"""The two-party SM2 protocol (server side) and the mobile cosign app (协同签名)."""
