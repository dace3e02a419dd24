"""Settings for the benchmarks: the portal's own, plus the bare comparison views' URLs."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
