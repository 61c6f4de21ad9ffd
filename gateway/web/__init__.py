"""The people's side of gateway: a console for case workers, operators and auditors, and the
claim status API for senders. Served by ``gateway web --config FILE`` (``server.py``).

    app.py              the ASGI application (Starlette): routes, error pages, security headers
    context.py          what pages share: login and permissions, CSRF, templates, worker threads
    data.py             the one door to the store (every Store call of this package)
    auth_pages.py       log in / log out
    casework_pages.py   worklist (kontrolleres manuelt), search, bill page, override
    replay_pages.py     rebehandling: preview and apply (as jobs with progress)
    operations_pages.py overview, received messages, replies decoded, dead letters
    payout_pages.py     payout runs, next run, preview
    stats_pages.py      anonymised statistics: table, chart, downloads
    audit_pages.py      the audit log (revisor)
    jobs.py, jobs_pages.py  long work with a progress page
    replies.py          a stored reply (AppRec, signal) as readable XML and a summary
    probes.py           what the operations page asks outside the database: IMAP depths, CRLs
    oidc/               console login with OpenID Connect (``[web.oidc]``)
    api/                the claim status API: auth (JWT, mTLS), status model, OpenAPI
    server.py           uvicorn, TLS (and the client certificate for mTLS), ``gateway web``
    service.py          the same, as a service of ``gateway run`` (``[web] in_daemon``)

Console users and roles are ``gateway.users``. See docs/web.md.
"""
