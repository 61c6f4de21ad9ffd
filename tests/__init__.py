"""The project's tests; a package so that ``tests.support`` is importable by tests and bench."""
