from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"

    def ready(self) -> None:
        # Links on non-public campaigns keep their access (offers' post_save receivers).
        from . import offers  # noqa: F401, PLC0415
