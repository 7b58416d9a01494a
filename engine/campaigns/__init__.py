"""Campaigns: broadcasts and sequences (drip campaigns). They only plan message rows
through :mod:`engine.outbound.enqueue`; the sender sends them like any other."""
