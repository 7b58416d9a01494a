"""Media the customer sends and agents send: fetched from and uploaded to the Graph
API, kept in a size-capped disk cache."""
