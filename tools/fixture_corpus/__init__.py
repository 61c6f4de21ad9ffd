"""The fixtures corpus that ``tools/make_fixtures.py`` writes, one module per part of it.

- ``building``: senders, seeded claims, ebXML wrapping, XML and MIME editing, the records.
- ``good``: claims that must be accepted.
- ``bad``: the table of bad messages: name, expected answer, and the mutation that makes it.
- ``mutations``: the mutations the table applies to a base claim or its message.
- ``sequences``: messages run in order on one store.

Imported as ``fixture_corpus`` with ``tools/`` on ``sys.path`` (``make_fixtures.py`` sees to it).
"""
