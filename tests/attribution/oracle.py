"""The reports' oracle: every figure an affiliate's reports must show, worked out from the
simulated month's truth alone (the generator's side: tests/simulation.py), never from the
portal's code.

Each click and each credited conversion is a fact with a place: the affiliate's local day, the
channel and platform its player came through, the country, the campaign and sub1. The figures
of any period and filter are sums of the facts that match. What counts as what is the product's
definition, written out here on its own:

- a click counts once, on the platform of the device that clicked (web for a desktop);
- a conversion the portal rejects counts as ``rejected``; an approved or pending one counts by
  its type: installs, registrations, FTDs (each also a deposit), deposits, and the operator's
  amounts (deposits' as ``deposit_amount``, purchases' as ``revenue``) in EUR at the managers'
  rate;
- an approved or pending conversion earns the plan's CPA for its type (its affiliate's own
  commission), and its affiliate's parent the plan's percent of that (``sub_commission``, in
  the parent's figures, on the parent's local day).

SKAdNetwork's postbacks are left out: Apple sends no event time, so they count on the day they
are received, which the generator cannot know.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from tests import simulation

METRICS = (
    "clicks",
    "installs",
    "registrations",
    "ftds",
    "deposits",
    "rejected",
    "deposit_amount",
    "revenue",
    "commission",
    "sub_commission",
)
COUNTS = METRICS[:6]
SKIPPED_SOURCES = ("skadnetwork",)


@dataclass(frozen=True)
class Place:
    day: date  # in the affiliate's time zone
    channel: str
    platform: str
    country: str
    campaign: str  # the campaign's key
    sub1: str


@dataclass(frozen=True)
class Fact:
    affiliate: str
    place: Place
    values: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class Query:
    """A period and filters, as the reports take them (campaign by key)."""

    start: date
    end: date
    campaign: str = ""
    platform: str = ""
    channel: str = ""
    country: str = ""
    sub1: str = ""

    def matches(self, place: Place) -> bool:
        return (
            self.start <= place.day <= self.end
            and (not self.campaign or place.campaign == self.campaign)
            and (not self.platform or place.platform == self.platform)
            and (not self.channel or place.channel == self.channel)
            and (not self.country or place.country == self.country)
            and (not self.sub1 or place.sub1 == self.sub1)
        )


def _place(when: datetime, zone: str, platform: str, country: str, campaign: str, sub1: str):
    return Place(
        day=when.astimezone(zoneinfo.ZoneInfo(zone)).date(),
        channel="web" if platform == "web" else "mobile",
        platform=platform,
        country=country,
        campaign=campaign,
        sub1=sub1,
    )


def facts(month: simulation.Month) -> list[Fact]:
    """Every click and credited conversion of the month, in its affiliates' places."""
    program = month.program
    zones = {a.username: a.time_zone for a in program.affiliates}
    parents = {a.username: a.parent for a in program.affiliates}
    links = {link.code: link for link in program.links}
    rates = {"EUR": Decimal(1), **{c: Decimal(r) for c, r in program.fx_to_eur}}
    cpa = {kind: Decimal(amount) for kind, amount in program.plan.cpa.items()}
    levels = [Decimal(p) for p in program.plan.sub_levels]
    out = []
    for click in month.clicks:
        link = links[click.link]
        place = _place(
            click.at,
            zones[link.affiliate],
            simulation.UA_PLATFORM[click.user_agent],
            click.country,
            link.campaign,
            click.query.get("sub1", ""),
        )
        out.append(Fact(link.affiliate, place, (("clicks", Decimal(1)),)))
    for step in month.postbacks:
        truth = step.truth
        if truth is None or truth.affiliate is None or step.source in SKIPPED_SOURCES:
            continue
        where = truth.where
        values: dict[str, Decimal] = {}
        commission = Decimal(0)
        if truth.status == "rejected":
            values["rejected"] = Decimal(1)
        else:
            amount = (truth.revenue or Decimal(0)) * rates[truth.currency or "EUR"]
            if truth.type == "install":
                values["installs"] = Decimal(1)
            elif truth.type == "registration":
                values["registrations"] = Decimal(1)
            elif truth.type == "ftd":
                values.update(ftds=Decimal(1), deposits=Decimal(1), deposit_amount=amount)
            elif truth.type == "deposit":
                values.update(deposits=Decimal(1), deposit_amount=amount)
            elif truth.type in ("purchase", "custom"):
                values["revenue"] = amount
            commission = cpa.get(truth.type, Decimal(0))
        if commission:
            values["commission"] = commission
        where_of = (where.at, where.platform, where.country, where.campaign, where.sub1)
        place = _place(where_of[0], zones[truth.affiliate], *where_of[1:])
        out.append(Fact(truth.affiliate, place, tuple(values.items())))
        earner = truth.affiliate
        for percent in levels:
            parent = parents.get(earner)
            if parent is None or not commission:
                break
            share = commission * percent / Decimal(100)
            out.append(
                Fact(
                    parent,
                    _place(where_of[0], zones[parent], *where_of[1:]),
                    (("sub_commission", share),),
                )
            )
            earner = parent
    return out


def _blank() -> dict[str, Decimal]:
    return dict.fromkeys(METRICS, Decimal(0))


def table(all_facts: list[Fact], affiliate: str, query: Query, by: str | None) -> dict:
    """The affiliate's figures under ``query``, per value of ``by`` (a Place field; None: one
    row, key "")."""
    rows: dict = defaultdict(_blank)
    for fact in all_facts:
        if fact.affiliate != affiliate or not query.matches(fact.place):
            continue
        row = rows[getattr(fact.place, by) if by else ""]
        for metric, value in fact.values:
            row[metric] += value
    return dict(rows)
