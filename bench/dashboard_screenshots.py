"""The README's dashboard screenshots, taken on bench/seed_scale.py's year of a 20-office brokerage:
numbers at the scale brokers run at, not a test's handful of calls.

Starts the product's own server (`manage.py runserver`, daphne, DEBUG on so static files are served)
against the seeded database, signs in through the login form as the people of that brokerage, and
saves with Debian's Chromium (the browser tests' flags):

- docs/dashboard.png: a broker, every office, the last 30 days, by office;
- docs/dashboard-agents.png: the busiest office's team leader, the last 90 days, the agents'
  leaderboard and the weekly trend;
- docs/dashboard-phone.png: the broker's page on a phone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/dashboard_screenshots.py [--db-name textback_bench_scale]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.seed_scale import BENCH_PASSWORD, DEFAULT_DB_NAME  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"dashboard_screenshots: the server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("dashboard_screenshots: the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME)
    parser.add_argument("--out", default=str(REPO / "docs"))
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("dashboard_screenshots: set DATABASE_URL to the PostgreSQL server holding bench/seed_scale.py's database")
    env = {
        **os.environ, "DATABASE_URL": urlunsplit(urlsplit(url)._replace(path=f"/{args.db_name}")), "DEBUG": "true",
        "TEXTBACK_VAR_DIR": tempfile.mkdtemp(prefix="textback-screenshots-"), "SECRET_KEY": "bench-screenshots-" + "0" * 40,
    }
    for name in ("SMS_BACKEND", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "textback_site.settings"
    import django

    django.setup()
    from django.db.models import Count

    from leads.models import Lead
    from routing.models import Agent
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # the browser tests' Chromium and flags

    busiest = Lead.objects.values("office_id").annotate(n=Count("pk")).order_by("-n").first()["office_id"]
    broker = Agent.objects.select_related("user").filter(role=Agent.Role.BROKER).order_by("pk").first()
    leader = Agent.objects.select_related("user").filter(role=Agent.Role.TEAM_LEADER, office_id=busiest).order_by("pk").first()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    out = Path(args.out)
    try:
        wait_for(port, server)
        from playwright.sync_api import expect, sync_playwright

        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            def signed_in(agent: Agent, width: int, height: int):
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                page.goto(f"{base}/accounts/login/")
                page.get_by_label("Email").fill(agent.user.email)
                page.get_by_label("Password").fill(BENCH_PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                expect(page.locator("#live-status")).to_have_text("Live", timeout=30_000)
                return page

            def shoot(page, path: str, name: str, full_page: bool = True) -> None:
                page.goto(f"{base}{path}")
                expect(page.locator("#live-status")).to_have_text("Live", timeout=30_000)
                page.screenshot(path=out / name, full_page=full_page)
                print(f"  {out / name}")

            shoot(signed_in(broker, 1280, 1100), "/reports/dashboard/?period=30&by=office", "dashboard.png")
            shoot(signed_in(leader, 1280, 1100), "/reports/dashboard/?period=90&by=agent", "dashboard-agents.png")
            shoot(signed_in(broker, 390, 844), "/reports/dashboard/?period=30&by=office", "dashboard-phone.png", full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
