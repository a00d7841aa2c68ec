"""Signing tasks: documents, participants, placements, sign requests and the flows."""
