"""Contact-level rules that are not storage: CSV import parsing."""
