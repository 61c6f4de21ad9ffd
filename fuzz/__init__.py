"""Coverage-guided fuzzing (atheris) of what a sender controls: the MIME unwrap, the XML reader
and the claim parser. ``make fuzz`` runs each target longer; ``tests/test_fuzz.py`` runs each
briefly and replays every corpus file (``fuzz/corpus/<target>/``), crashes found earlier
included."""
