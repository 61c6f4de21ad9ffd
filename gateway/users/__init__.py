"""Console users: local accounts with argon2-hashed passwords, roles, sessions, login throttling
and the audit log.

    gateway users add NAME --role ROLE [--role ROLE] [--name "Full Name"]   (asks for a password)
    gateway users disable NAME | enable NAME
    gateway users roles NAME --set ROLE[,ROLE]
    gateway users password NAME
    gateway users list

Roles (``roles.py``): ``saksbehandler`` (case work), ``drift`` (operations), ``revisor``
(reads everything a case worker and an operator can, changes nothing). The tables live in the
claims database (``store.users``, ``gateway.store.users``).
"""
