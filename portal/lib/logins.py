"""Login helpers shared by every door that takes a password (``/login/``, the admin, the API)."""

from typing import Any

# django-axes keeps the username of a failed login in a varchar(255); Django's usernames are
# at most 150 characters, so nothing longer can name an account.
USERNAME_MAX = 150


def axes_username(request: Any, credentials: dict[str, Any] | None = None) -> str | None:
    """The username django-axes records and locks out (AXES_USERNAME_CALLABLE): as given, cut
    to the longest a username can be. A 300-character one used to fail the login with a 500."""
    if credentials:
        given = credentials.get("username")
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        given = data.get("username")
    return None if given is None else str(given)[:USERNAME_MAX]
