"""optinflow: a WhatsApp chatbot flow engine with per-channel marketing opt-in rules."""

__version__ = "0.1.0"
