"""The Twilio SDK client, pointed at TWILIO_API_BASE_URL.

Every Twilio product lives on its own host (api., lookups., ...); rewriting scheme and host in
the SDK's HTTP client sends them all to one base URL, so tests and benchmarks can put a loopback
fake there while the SDK builds every request itself.
"""

import functools
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


class BaseUrlHttpClient(TwilioHttpClient):
    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


@functools.cache
def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    if base_url == "https://api.twilio.com":
        http_client = TwilioHttpClient(timeout=timeout)
    else:
        http_client = BaseUrlHttpClient(base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def twilio_client(*, timeout: float = 10) -> Client:
    """One client per process, credentials and timeout; it keeps its HTTP connections alive.

    The timeout is short: a send that hangs holds a worker, and the outbox retries it later instead.
    """
    return _client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_API_BASE_URL, timeout)
