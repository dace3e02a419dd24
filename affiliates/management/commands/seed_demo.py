import json

from django.core.management.base import BaseCommand
from tqdm import tqdm

from affiliates.demo import DEMO_BASE_URL, seed_demo

# The suggested try-out is a phone's browser: a HEAD request or curl's own user agent is
# redirected but not counted as a click (bots and previewers are not visitors).
TRY_USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"


class Command(BaseCommand):
    help = "Create (or complete) the demo program: logins, brand, apps, campaigns, links, clicks."

    def add_arguments(self, parser):
        parser.add_argument("--clicks", type=int, default=5000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object only"
        )
        parser.add_argument(
            "--base-url",
            default=DEMO_BASE_URL,
            help=f"where the portal answers, for the URLs it prints and stores [{DEMO_BASE_URL}]",
        )

    def handle(
        self, *args, clicks: int, days: int, as_json: bool, base_url: str, **options
    ) -> None:
        postbacks = tqdm(desc="demo postbacks", unit="click", disable=None)

        def postback_progress(done: int, total: int) -> None:
            postbacks.total = total
            postbacks.n = done
            postbacks.refresh()

        with tqdm(total=clicks, desc="demo clicks", unit="click", disable=None) as bar:
            demo = seed_demo(
                clicks=clicks,
                days=days,
                progress=bar.update,
                postback_progress=postback_progress,
                base_url=base_url,
            )
        postbacks.close()
        if as_json:
            self.stdout.write(json.dumps(demo.as_json(), indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo program ready: {demo.clicks} clicks, {demo.conversions} postbacks "
                "attributed (a second run adds nothing)."
            )
        )
        self.stdout.write(f"  manager login:   {demo.manager} / {demo.password}  (/admin/)")
        self.stdout.write(
            "  manager 2FA:     only when ADMIN_2FA is on (make run turns it off); add to an "
            f"authenticator: {demo.manager_totp}"
        )
        for username, info in demo.affiliates.items():
            self.stdout.write(
                f"  affiliate login: {username} / {demo.password}  (#{info['affiliate_id']})"
            )
        sample = demo.links[0]["code"]
        self.stdout.write(
            f"  try a link:      curl -s -o /dev/null -w '%{{redirect_url}}\\n' "
            f"-A '{TRY_USER_AGENT}' {base_url.rstrip('/')}/c/{sample}"
        )
