"""Acceptance (issue 4): a simulated month through the real endpoints and a real worker.

The generator (tests/simulation.py) builds October 2026 with the truth known: clicks on tracking
links, installs through every MMP, web sign-ups and deposits through the operator's backend,
retries, cross-source duplicates, fraud patterns and SKAdNetwork postbacks. This test makes every
click and sends every postback over HTTP to a real gunicorn, in timeline order, lets a real Celery
worker process them, and holds each conversion to its truth: affiliate, status and reason.

A month squeezed into seconds would let a worker see an in-app event before the install it
follows; in real time it arrives hours later. So before a story's next step is sent, the story's
previous postback must have been processed; different stories still interleave freely, and the
two worker processes handle them side by side.
"""

import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from attribution.models import Click, Conversion, Postback
from tests import simulation
from tests.processes import celery_worker, purge_queue, wait_until, web_server

# Another month: SIMULATION_SEED=7 pytest tests/attribution/test_simulated_month.py
SEED = int(os.environ.get("SIMULATION_SEED", "202610"))
USER_AGENTS = {
    "appsflyer": "AppsFlyer-Postback/2.0",
    "adjust": "Adjust-Callback/1.0",
    "branch": "Branch Metrics API",
    "singular": "Singular-Postbacks/1.0",
    "kochava": "Kochava-Postback/1.0",
    "s2s": "LuckySpins-Backend/4.2",
    "skadnetwork": "com.apple.storekit.adattribution/1.0",
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keep the 302 of /c/<code>: its Location carries the click id; the store is not ours."""

    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def _open(request: urllib.request.Request) -> tuple[int, bytes, dict]:
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@dataclass
class Played:
    """What the servers answered."""

    answers: dict[str, tuple[int, dict]] = field(default_factory=dict)  # postback label -> answer
    click_ids: dict[str, str] = field(default_factory=dict)  # ClickRef name -> server's click id
    click_problems: list[str] = field(default_factory=list)
    waited: float = 0.0  # seconds spent waiting for a story's previous postback


def _click(base: str, step: simulation.ClickStep, played: Played) -> None:
    query = f"?{urlencode(step.query)}" if step.query else ""
    request = urllib.request.Request(
        f"{base}/c/{step.link}{query}",
        headers={"User-Agent": step.user_agent, "CF-IPCountry": step.country},
    )
    status, _, headers = _open(request)
    location = headers.get("Location", "")
    params = parse_qs(urlsplit(location).query)
    click_id = next((params[k][0] for k in ("clickid", "click_id", "cid") if k in params), "")
    if status != 302 or not click_id:
        played.click_problems.append(f"{step.ref}: {status} {location!r}")
        return
    # The server stamps clicks with its own time: move this one to its place in the month.
    if Click.objects.filter(click_id=click_id).update(created_at=step.at) != 1:
        played.click_problems.append(f"{step.ref}: click {click_id} not stored")
    played.click_ids[step.ref] = click_id


def _postback(
    base: str, month: simulation.Month, step: simulation.PostbackStep, played: Played
) -> None:
    data = step.resolved(played.click_ids)
    headers = {"User-Agent": USER_AGENTS[step.source]}
    if step.source == "skadnetwork":
        url = f"{base}/.well-known/skadnetwork/report-attribution/"
    else:
        url = f"{base}/postbacks/{step.source}/{month.program.source(step.source).token}/"
    body = None
    if step.method == "GET":
        url += f"?{urlencode(data)}"
    elif step.body_format == "form":
        body = urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=step.method)
    status, raw, _ = _open(request)
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {"unreadable": raw[:200].decode(errors="replace")}
    played.answers[step.label] = (status, answer)


def _processed(postback_id: int) -> bool:
    return Postback.objects.filter(pk=postback_id).exclude(status=Postback.Status.RECEIVED).exists()


def play(month: simulation.Month, base: str) -> Played:
    """Send the month in timeline order; a story's step waits for its previous postback."""
    played = Played()
    last_sent: dict[str, int] = {}
    for step in month.timeline:
        previous = last_sent.get(step.story)
        if previous is not None and not _processed(previous):
            started = time.monotonic()
            assert wait_until(lambda pk=previous: _processed(pk), timeout=60, interval=0.02), (
                f"postback #{previous} of {step.story} was not processed within 60 s"
            )
            played.waited += time.monotonic() - started
        if isinstance(step, simulation.ClickStep):
            _click(base, step, played)
            continue
        _postback(base, month, step, played)
        status, answer = played.answers[step.label]
        if status == 200 and isinstance(answer.get("id"), int):
            last_sent[step.story] = answer["id"]
    return played


def _describe(conversion: Conversion) -> str:
    user = conversion.affiliate.user.username if conversion.affiliate else None
    return (
        f"#{conversion.pk} {conversion.type} {user} {conversion.status}/{conversion.reason} "
        f"{conversion.method} ({conversion.detail[:80]})"
    )


def check(month: simulation.Month, played: Played) -> tuple[list[str], list[Conversion]]:
    """Every difference between what happened and the truth, as readable lines."""
    problems = [f"click {line}" for line in played.click_problems]
    if Click.objects.count() != len(month.clicks):
        problems.append(f"{Click.objects.count()} clicks stored, {len(month.clicks)} made")

    # The answers: 200 accepted for each new postback, 200 duplicate (same row) for each retry.
    originals = {}
    for step in month.postbacks:
        status, answer = played.answers[step.label]
        if step.retry_of is None:
            if (status, answer.get("status")) != (200, "accepted"):
                problems.append(f"{step.label}: answered {status} {answer}")
            originals[step.label] = answer.get("id")
        elif (status, answer.get("status"), answer.get("id")) != (
            200,
            "duplicate",
            originals.get(step.retry_of),
        ):
            problems.append(f"{step.label}: retry answered {status} {answer}")

    # The inbox: one row per distinct postback, every one of them processed.
    rows = Counter(Postback.objects.values_list("status", flat=True))
    if rows != {Postback.Status.PROCESSED: len(originals)}:
        failed = Postback.objects.exclude(status=Postback.Status.PROCESSED)
        problems.append(
            f"inbox rows {dict(rows)}, expected {len(originals)} processed; "
            + "; ".join(f"#{r.pk} {r.kind} {r.status}: {r.reason[:120]}" for r in failed[:10])
        )

    # The conversions: exactly the expected ones, each with its truth.
    conversions = list(
        Conversion.objects.select_related("affiliate__user", "event", "duplicate_of__event")
    )
    by_postback = {c.event.postback_id: c for c in conversions}
    label_of = {pk: label for label, pk in originals.items()}
    for label, truth in month.truths.items():
        conversion = by_postback.pop(originals.get(label), None)
        if conversion is None:
            problems.append(f"{label}: no conversion (expected {truth.outcome})")
            continue
        user = conversion.affiliate.user.username if conversion.affiliate else None
        got = (user, conversion.status, conversion.reason, conversion.method, conversion.type)
        want = (truth.affiliate, truth.status, truth.reason, truth.method, truth.type)
        if got != want:
            problems.append(f"{label}: got {got}, expected {want} ({conversion.detail[:120]})")
        if truth.revenue is not None and conversion.revenue != truth.revenue:
            problems.append(f"{label}: revenue {conversion.revenue}, expected {truth.revenue}")
        holder = conversion.duplicate_of
        holder_label = label_of.get(holder.event.postback_id) if holder else None
        if holder_label != truth.duplicate_of:
            problems.append(f"{label}: duplicate of {holder_label}, expected {truth.duplicate_of}")
    problems += [f"unexpected conversion {_describe(c)}" for c in by_postback.values()]

    # Exactly one winning conversion per claim.
    claims = defaultdict(list)
    for conversion in conversions:
        claims[conversion.claim_key].append(conversion)
    for key, held in claims.items():
        winners = [c for c in held if c.is_winner]
        if len(winners) != 1:
            problems.append(f"claim {key}: {len(winners)} winners among {len(held)}")
    return problems, conversions


def summary(month: simulation.Month, conversions: list[Conversion], seconds: dict) -> str:
    reasons = Counter(c.reason for c in conversions)
    statuses = Counter(c.status for c in conversions)
    stories = month.counts()["stories"]
    retries = sum(step.retry_of is not None for step in month.postbacks)
    lines = [
        f"simulated month 2026-10 (seed {month.seed}): {len(month.stories)} stories, "
        f"{len(month.clicks)} clicks, {len(month.postbacks)} postbacks ({retries} retries), "
        f"{len(conversions)} conversions",
        "  stories: " + ", ".join(f"{k} {v}" for k, v in sorted(stories.items())),
        "  reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()),
        "  statuses: " + ", ".join(f"{k} {v}" for k, v in statuses.most_common()),
        "  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()),
    ]
    return "\n".join(lines)


def test_a_generated_month_is_the_same_for_the_same_seed_and_covers_every_story():
    month = simulation.generate(SEED)
    assert month == simulation.generate(SEED)
    assert month.postbacks != simulation.generate(SEED + 1).postbacks
    counts = month.counts()
    assert set(counts["sources"]) == {*simulation.MMPS, "s2s", "skadnetwork"}
    assert {
        "ok",
        "organic",
        "duplicate_claim",
        "duplicate_ftd",
        "low_ctit",
        "outside_lookback",
        "mmp_blocked",
        "ip_burst",
        "device_burst",
        "not_winning",
        "declined",
    } <= set(counts["reasons"])
    assert sum(1 for step in month.postbacks if step.report_of) == 9  # the operator's later reports
    assert {"click_id", "device_id", "install_chain", "none", "skan"} == set(counts["methods"])
    assert 200 <= len(month.postbacks) <= 400
    assert len(month.clicks) < 1000  # far below the click-flooding rule's minimum


@pytest.mark.worker
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_simulated_month_through_http_and_a_real_worker_matches_the_truth(tmp_path, capsys):
    # given the month's program in the database, a real web server and a real worker
    month = simulation.generate(SEED)
    simulation.install(month)
    purge_queue()
    seconds = {}
    with celery_worker(tmp_path), web_server(tmp_path) as base:
        # when every click and postback of the month arrives over HTTP, in timeline order
        started = time.monotonic()
        played = play(month, base)
        seconds["sending"] = time.monotonic() - started
        seconds["waiting on stories"] = played.waited
        started = time.monotonic()
        drained = wait_until(
            lambda: not Postback.objects.filter(status=Postback.Status.RECEIVED).exists(),
            timeout=120,
            interval=0.1,
        )
        seconds["draining"] = time.monotonic() - started

    # then every conversion is the truth's: affiliate, status and reason, and nothing else
    assert drained, "postbacks still waiting for the worker after 120 s"
    problems, conversions = check(month, played)
    with capsys.disabled():
        print("\n" + summary(month, conversions, seconds))  # noqa: T201
    assert not problems, f"{len(problems)} differences from the truth:\n" + "\n".join(problems[:60])
