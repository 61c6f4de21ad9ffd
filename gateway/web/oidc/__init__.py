"""Console login with OpenID Connect (``[web.oidc]``, docs/web.md): the authorization code flow
with PKCE against a configured issuer, beside the local accounts.

    config.py   ``OidcConfig``: the ``[web.oidc]`` table
    provider.py the issuer over HTTP: discovery document, JWKS, token endpoint
    flow.py     one login: state, nonce and PKCE; the ID token checked; roles from a claim
    pages.py    ``/oidc/logg-inn`` (off to the issuer) and ``/oidc/tilbake`` (back, logged in)

A successful login makes the same session as a password login (``Accounts.login_external``):
the same cookie, expiry, CSRF token, audit lines and throttling.
"""
