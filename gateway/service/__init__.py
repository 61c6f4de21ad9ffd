"""Running unattended: systemd notification and watchdog, health checks, Prometheus metrics.

- ``gateway.service.systemd``: ``sd_notify`` without a dependency (READY, STOPPING, RELOADING,
  STATUS, WATCHDOG) and the watchdog service; every call is a no-op outside systemd.
- ``gateway.service.health``: the checks behind ``gateway health`` (database, mailboxes, SMTP,
  certificates, directories) and their exit code; the mail checks connect with the transports'
  own IMAP session and SMTP client.
- ``gateway.service.metrics``: per-stage counters and latency histograms, scrape-time gauges, and
  the ``/metrics`` endpoint on a localhost port (a service).

Each module takes primitive parameters or callables, so ``gateway.wiring`` wires them without
this package knowing about the store or the pipeline.
"""
