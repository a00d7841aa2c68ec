"""Outbox and delivery channels (WeChat Work message, SMS, log)."""
