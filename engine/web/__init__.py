"""The aiohttp application: webhook, REST API, console."""
