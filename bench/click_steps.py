"""Where a click's own Python time goes: each step of ``/c/<code>`` timed alone, in one process.

Run by ``bench/clicks.py`` against its benchmark database (a real link from the demo); prints
one line per step, microseconds per call, then the whole click fast path (the WSGI app in front
of Django that answers ``/c/``) without and with its row. gunicorn's own work a request (parsing,
writing, the thread hand-off) is not here: the bare view pays it too.

    DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=... python -m bench.click_steps <code>
"""

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def per_call_us(function, number: int = 5000) -> float:
    return timeit.timeit(function, number=number) / number * 1e6


def main(code: str) -> None:
    import django

    django.setup()

    from django.conf import settings
    from django.test import RequestFactory
    from django.utils import timezone
    from ulid import ULID

    from attribution.clicks import targets, visitors, writing
    from attribution.clicks.destination import ClickContext, build_destination
    from attribution.clicks.recording import clean_line, client_ip
    from attribution.fastpath import ClickFastPath

    link = targets.link_for_redirect(code=code)
    if link is None:
        raise SystemExit(f"no active link {code!r}")
    template = link.android_url or link.web_url
    ctx = ClickContext(
        click_id=str(ULID()),
        affiliate_id=link.affiliate_id,
        campaign_id=link.campaign_id,
        campaign_name=link.campaign_name,
        subs=dict(zip([f"sub{i}" for i in range(1, 6)], link.subs, strict=True)),
        lookback_days=link.lookback_days,
    )
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": USER_AGENT}
    visitors.is_bot(USER_AGENT)
    request = RequestFactory().get(
        f"/c/{code}", HTTP_USER_AGENT=USER_AGENT, HTTP_HOST=settings.ALLOWED_HOSTS[0]
    )
    steps = {
        "link lookup, kept (per process)": lambda: targets.link_for_redirect(code=code),
        "link lookup, database (each 5 s)": lambda: targets._lookup(code),
        "bot check, kept user agent": lambda: visitors.skip_reason(
            method="GET", user_agent=USER_AGENT
        ),
        "bot check, new user agent (~1 in N)": lambda: visitors._detector.is_crawler(
            USER_AGENT + str(timeit.default_timer())
        ),
        "click id (ULID)": lambda: str(ULID()),
        "time, address, user agent cut": lambda: (
            timezone.now(),
            client_ip(meta),
            clean_line(USER_AGENT, 512),
        ),
        "destination (macros, MMP params)": lambda: build_destination(
            template, ctx, appsflyer_pid=settings.APPSFLYER_PID
        ),
    }
    for name, step in steps.items():
        number = 200 if "database" in name or "new user agent" in name else 5000
        print(f"  {name:<38} {per_call_us(step, number):8.1f} us")
    fast = ClickFastPath(lambda environ, start_response: [])

    def through_fast_path(method: str) -> None:
        fast({**request.environ, "REQUEST_METHOD": method}, lambda status, headers: None)

    # HEAD: everything but the row (a HEAD request is redirected and not recorded).
    head = per_call_us(lambda: through_fast_path("HEAD"), 5000)
    print(f"  {'fast path, whole, no row (HEAD)':<38} {head:8.1f} us")
    # The click's row written alone (no committer here): for scale only.
    grouped = settings.CLICK_GROUP_COMMIT
    settings.CLICK_GROUP_COMMIT = False
    try:
        whole = per_call_us(lambda: through_fast_path("GET"), 300)
    finally:
        settings.CLICK_GROUP_COMMIT = grouped
    print(f"  {'fast path, one INSERT of its own':<38} {whole:8.1f} us (wall, incl. database)")
    writing.stop()


if __name__ == "__main__":
    main(sys.argv[1])
