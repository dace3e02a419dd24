"""Clicks on tracking links: the evidence deterministic attribution matches on."""

from django.db import models

from affiliates.models import Affiliate, Campaign, Platform, TrackingLink

# Lengths a click's free-text fields are cut to (documented in the README).
SUB_MAX = 255
USER_AGENT_MAX = 512
REFERRER_MAX = 1024


class Click(models.Model):
    # A ULID (26 characters, unique, sortable by time, safe in any URL) for clicks made here;
    # clicks imported from another platform keep their own ids, so up to 64.
    click_id = models.CharField(max_length=64)
    # No database constraint on the three keys: each click would pay a lookup and a share lock
    # of its link, affiliate and campaign rows (a fifth of PostgreSQL's work on a click, and
    # every click of one link queuing on its row). The redirect writes the ids of the link it
    # just read, and PROTECT still stops the ORM deleting what a click points at.
    link = models.ForeignKey(
        TrackingLink, on_delete=models.PROTECT, related_name="clicks", db_constraint=False
    )
    # Every index is paid for on each click: the composite (affiliate|campaign, time) indexes
    # below serve lookups by either key, so the foreign keys get none of their own.
    affiliate = models.ForeignKey(
        Affiliate,
        on_delete=models.PROTECT,
        related_name="clicks",
        db_index=False,
        db_constraint=False,
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        related_name="clicks",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=USER_AGENT_MAX, blank=True)
    platform = models.CharField(max_length=8, choices=Platform.choices)
    country = models.CharField(max_length=2, blank=True)
    sub1 = models.CharField(max_length=SUB_MAX, blank=True)
    sub2 = models.CharField(max_length=SUB_MAX, blank=True)
    sub3 = models.CharField(max_length=SUB_MAX, blank=True)
    sub4 = models.CharField(max_length=SUB_MAX, blank=True)
    sub5 = models.CharField(max_length=SUB_MAX, blank=True)
    referrer = models.CharField(max_length=REFERRER_MAX, blank=True)
    gaid = models.CharField(max_length=36, blank=True, help_text="Google advertising id")
    idfa = models.CharField(max_length=36, blank=True, help_text="Apple advertising id")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # With its time: on PostgreSQL the table is partitioned by month (clicks/partitions.py)
            # and a unique key must hold the partition key. Our click ids are ULIDs; an import
            # checks its ids against the stored ones. A constraint, not unique=True: on
            # PostgreSQL that adds a second (LIKE) index.
            models.UniqueConstraint(fields=["click_id", "created_at"], name="click_unique_id_time"),
        ]
        indexes = [
            models.Index(fields=["affiliate", "created_at"], name="click_affiliate_time"),
            models.Index(fields=["campaign", "created_at"], name="click_campaign_time"),
            # Device-id matching (no click id on the postback) looks these up; most clicks have
            # neither, so the indexes only hold the rows that do.
            models.Index(
                fields=["gaid", "created_at"],
                name="click_gaid_time",
                condition=~models.Q(gaid=""),
            ),
            models.Index(
                fields=["idfa", "created_at"],
                name="click_idfa_time",
                condition=~models.Q(idfa=""),
            ),
        ]

    def __str__(self) -> str:
        return self.click_id


class SkippedClicks(models.Model):
    """Requests to a tracking link that were redirected but not recorded, counted per day.

    ``HEAD`` requests and known bots, crawlers and link previewers (Slackbot, facebookexternalhit,
    Googlebot, ...) are not visitors: recording them would inflate clicks, deflate conversion
    rates and feed the click-flooding rule with noise. Managers see here what was left out.
    """

    class Reason(models.TextChoices):
        HEAD = "head", "HEAD request"
        BOT = "bot", "Bot, crawler or link previewer"
        CAPPED = "capped", "Sent to the fallback: the offer's cap was reached"

    day = models.DateField(help_text="UTC")
    link = models.ForeignKey(TrackingLink, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=8, choices=Reason.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "skipped clicks"
        ordering = ["-day", "link_id", "reason"]
        constraints = [
            models.UniqueConstraint(fields=["day", "link", "reason"], name="skipped_one_counter"),
        ]

    def __str__(self) -> str:
        return f"{self.day} link {self.link_id} {self.reason}: {self.count}"
