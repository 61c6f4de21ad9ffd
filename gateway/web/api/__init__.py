"""The claim status API for senders (JSON, OpenAPI), modelled on KUHR's Krav API."""
