"""Settings for the benchmark and seeding tools: the product's, plus the `bench` app.

The tools stay out of the product's apps; `DJANGO_SETTINGS_MODULE=bench.settings` brings them in.
"""

from __future__ import annotations

from hogsend.settings import *  # noqa: F403
from hogsend.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
