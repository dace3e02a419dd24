import json

from django.core.management.base import BaseCommand
from tqdm import tqdm

from affiliates.demo import seed_demo


class Command(BaseCommand):
    help = "Create (or complete) the demo program: logins, brand, apps, campaigns, links, clicks."

    def add_arguments(self, parser):
        parser.add_argument("--clicks", type=int, default=5000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object only"
        )

    def handle(self, *args, clicks: int, days: int, as_json: bool, **options) -> None:
        postbacks = tqdm(desc="demo postbacks", unit="click", disable=None)

        def postback_progress(done: int, total: int) -> None:
            postbacks.total = total
            postbacks.n = done
            postbacks.refresh()

        with tqdm(total=clicks, desc="demo clicks", unit="click", disable=None) as bar:
            demo = seed_demo(
                clicks=clicks, days=days, progress=bar.update, postback_progress=postback_progress
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
        self.stdout.write(f"  try a link:      curl -sI http://127.0.0.1:8000/c/{sample}")
