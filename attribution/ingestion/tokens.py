"""Postback source tokens: rotation with a grace period for the old one."""

from datetime import timedelta

from django.utils import timezone

from affiliates.services import audit_record
from attribution.models import PostbackSource, new_source_token


def source_rotate_token(
    *, source: PostbackSource, actor: object = None, grace: timedelta = timedelta(days=7)
) -> PostbackSource:
    """Give ``source`` a new token; the old one keeps working for ``grace``."""
    old = source.token
    source.previous_token = old
    source.previous_token_valid_until = timezone.now() + grace
    source.token = new_source_token()
    source.save(update_fields=["token", "previous_token", "previous_token_valid_until"])
    audit_record(
        obj=source, field="token", old=old[:6] + "...", new=source.token[:6] + "...", actor=actor
    )
    return source
