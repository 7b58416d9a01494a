"""What a store raises on purpose: a row missing or already there, the database busy
or out of reach. Anything else is a fault."""


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class StoreUnavailable(StoreError):
    """The database cannot be reached (down, restarting, refusing us): try again later."""


class StoreBusy(StoreError):
    """Every connection stayed in use for longer than the wait allowed: try again soon."""
