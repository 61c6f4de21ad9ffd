"""The claims store: SQLite by default."""
