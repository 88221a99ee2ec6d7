"""Browser tests: Playwright driving Debian's Chromium (no browser download) against Daphne."""

import os

import pytest
from playwright.sync_api import expect

from conftest import HttpClient, Twilio
from tests.fake_twilio import FakeTwilio

PASSWORD = "browser-test-password"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API keeps an event loop in this thread; the browser tests' own ORM calls
    # are still plain synchronous code, so Django's guard against ORM use in a loop is lifted
    # for them alone.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


class _AsgiServer:
    """Daphne serving the project's ASGI application (HTTP and the inbox websocket) from a thread
    of the test process, so tests share its settings and database."""

    def __init__(self):
        import socket
        import threading

        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from textback_site.asgi import application

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(
            application=application, signal_handlers=False, verbosity=0,
            endpoints=build_endpoint_description_strings(host="127.0.0.1", port=self.port),
        )
        threading.Thread(target=self.server.run, name="daphne", daemon=True).start()
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 10) -> None:
        import socket
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("daphne did not start listening")


@pytest.fixture(scope="session")
def _asgi_server(django_db_setup, django_db_blocker):
    return _AsgiServer()


@pytest.fixture
def live(_asgi_server, settings, transactional_db):
    """The app over real HTTP and websockets; Twilio's signatures are computed for its URL."""
    settings.PUBLIC_BASE_URL = _asgi_server.url
    return _asgi_server


@pytest.fixture
def twilio_http(live, settings, brokerage):
    client = HttpClient(live.url)
    yield Twilio(client, settings.TWILIO_AUTH_TOKEN, live.url)
    client.session.close()


@pytest.fixture
def fake_twilio(settings):
    """The real Twilio SDK sends to a loopback fake of Twilio's REST API, whose signed status callbacks come back."""
    with FakeTwilio(auth_token=settings.TWILIO_AUTH_TOKEN, callbacks="auto", callback_threads=1) as fake:
        settings.SMS_BACKEND = "leads.sms.twilio.TwilioBackend"
        settings.TWILIO_ACCOUNT_SID = "AC" + "7e" * 16
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


def sign_in(page, base_url: str, django_user_model, email: str) -> None:
    """Sign in through the login form; agents land in their inbox, its websocket connected."""
    user = django_user_model.objects.get(email=email)
    user.set_password(PASSWORD)
    user.save()
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live-status")).to_have_text("Live")
