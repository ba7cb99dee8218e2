"""Staff users that log in to a served admin through its own login page."""

from __future__ import annotations

import re
from typing import Any

PASSWORD = "a-long-password-1"


def staff_user(
    user_model: Any, username: str, *codenames: str, superuser: bool = False
) -> Any:
    """A staff user with ``codenames`` as its permissions.

    The password is hashed as the server (project settings) checks it, not
    with the tests' quick MD5 hasher, so the login page accepts it.
    """
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Permission

    if superuser:
        user = user_model.objects.create_superuser(username)
    else:
        user = user_model.objects.create_user(username, is_staff=True)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "saltsalt")
    user.save()
    if codenames:
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def log_in(page: Any, username: str) -> None:
    """Log ``page``'s browser context in through ``/admin/login/``."""
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
