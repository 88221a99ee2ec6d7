"""`make run`'s last step: the web server, the worker and, when REDIS_URL is unset, the embedded Redis.

One foreground process that owns its children, so Ctrl-C stops everything it started.
"""

import os
import signal
import subprocess
import sys

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "textback_site.settings")
    django.setup()
    from django.conf import settings

    from textback_site.embedded_redis import embedded_redis_needed, embedded_redis_start

    redis_process = None
    if embedded_redis_needed():
        redis_process = embedded_redis_start(settings.EMBEDDED_REDIS_SOCKET)
    python = sys.executable
    services = [
        subprocess.Popen([python, "manage.py", "qcluster"]),
        subprocess.Popen(
            [python, "-m", "daphne", "-b", settings.HOST, "-p", str(settings.PORT), "textback_site.asgi:application"]
        ),
    ]
    print(f"Textback is running on http://{settings.HOST}:{settings.PORT}/  (Ctrl-C stops it)", flush=True)

    def stop(*_):
        # Redis goes last: the worker needs it to hand back the tasks it was holding.
        for group in (services, [redis_process] if redis_process else []):
            for child in group:
                if child.poll() is None:
                    child.terminate()
            for child in group:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        # If the web server or the worker dies, stop the rest rather than run half a product.
        os.wait()
    except KeyboardInterrupt:
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
