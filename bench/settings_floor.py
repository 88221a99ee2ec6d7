"""The product's settings with one change: the bench-only URLconf that adds the floor view."""

from textback_site.settings import *  # noqa: F403 - the product's settings, unchanged

ROOT_URLCONF = "bench.urls_floor"
