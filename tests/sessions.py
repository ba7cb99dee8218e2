"""A visitor with a session of their own, as a browser would have one."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore
from django.test import Client


def session_client(**client_options: bool) -> tuple[Client, str]:
    session = SessionStore()
    session.create()
    client = Client(**client_options)
    client.cookies["sessionid"] = session.session_key or ""
    return client, session.session_key or ""
