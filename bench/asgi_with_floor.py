"""The product's ASGI application under bench settings (product URLs + /bench/floor/).

    daphne -b 127.0.0.1 -p PORT bench.asgi_with_floor:application

The product module reads DJANGO_SETTINGS_MODULE with setdefault, so setting it first is enough;
whatever else textback_site.asgi routes (websockets) stays as it is.
"""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_floor"

from textback_site.asgi import application  # noqa: E402, F401
