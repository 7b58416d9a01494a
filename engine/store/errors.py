"""Errors a store raises on purpose; anything else is a fault."""


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass
