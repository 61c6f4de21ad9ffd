"""Open data: anonymised aggregate statistics from the claims store."""
