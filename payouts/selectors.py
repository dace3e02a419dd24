from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from affiliates.permissions import is_manager

from .models import LedgerEntry, Payout


def payout_for_viewer(*, payout_id: int, user: AbstractBaseUser) -> Payout | None:
    payouts = Payout.objects.select_related("affiliate", "run")
    if not is_manager(user):
        payouts = payouts.filter(affiliate__user=user)
    return payouts.filter(pk=payout_id).first()


def statement_lines(*, payout: Payout) -> QuerySet[LedgerEntry]:
    return (
        payout.lines.select_related("conversion__campaign")
        .only(
            "id",
            "kind",
            "amount",
            "currency",
            "original_amount",
            "original_currency",
            "fx_rate",
            "note",
            "created_at",
            "period",
            "conversion__id",
            "conversion__type",
            "conversion__occurred_at",
            "conversion__campaign__name",
        )
        .order_by("created_at", "pk")
    )
