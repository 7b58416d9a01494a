"""Outbound messages: one pipeline for every channel (policy → outbox row → sender)."""
