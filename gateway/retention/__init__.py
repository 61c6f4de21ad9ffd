"""Retention: moving the bytes of old received messages and replies into archive files
(``gateway retention``), keeping their hashes and metadata in the database."""
