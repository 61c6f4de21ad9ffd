"""Running unattended: systemd notification and watchdog, health checks, Prometheus metrics.

- ``gateway.service.systemd``: ``sd_notify`` without a dependency (READY, STOPPING, RELOADING,
  STATUS, WATCHDOG) and the watchdog loop; every call is a no-op outside systemd.
- ``gateway.service.health``: the checks behind ``gateway health`` (database, mailboxes, SMTP,
  certificates, directories) and their exit code.
- ``gateway.service.metrics``: per-stage counters and latency histograms, scrape-time gauges, and
  the ``/metrics`` endpoint on a localhost port.

Each module takes primitive parameters or callables, so the daemon wires them without this
package knowing about the store, the inboxes or the outbox.
"""
