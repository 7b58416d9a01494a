"""Inbound: what arrives on the webhook, stored before it is acknowledged.

``ingest`` is the store job for one notification (messages, statuses, consent
signals); ``statuses`` applies delivery statuses, early ones included; ``consent``
records opt-in signals; ``inputs`` reduces a message to a ``CustomerInput``; and
``dispatcher`` hands each stored message to the conversation handler, in order per
contact, after the webhook has answered.
"""
