"""The WhatsApp Cloud API wire format: webhooks in, send bodies out, and a simulator."""
