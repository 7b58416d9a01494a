"""Outbound messages: one pipeline for every channel (send rules → outbox row → sender)."""
