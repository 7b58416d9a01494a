"""Agents: accounts, taking conversations over from the bot, and the compose path."""
