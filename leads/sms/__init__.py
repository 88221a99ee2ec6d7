"""SMS backends, chosen by the SMS_BACKEND setting the way Django chooses an email backend.

Contract: `send(message) -> provider_sid`. Any provider failure raises SmsSendError, whose
`permanent` flag tells the outbox whether to retry and compliance whether to act.
`line_type(phone)` answers what kind of line a number is (mobile, landline, ...) before we
text it, or None when the backend cannot tell (demo mode, a failed lookup).
"""

import functools

from django.conf import settings
from django.utils.module_loading import import_string

# Twilio error codes after which retrying cannot help.
PERMANENT_ERROR_CODES = {
    21211: "Invalid phone number",
    21408: "Texting this region is not enabled",
    21610: "The recipient replied STOP to this number",
    21612: "This number cannot be texted from this line",
    21614: "Not a mobile number",
    30005: "Unknown or inactive number",
    30006: "Landline or unreachable carrier",
    30007: "Blocked by carrier filtering",
    30034: "Sender not registered for 10DLC",
}


class SmsSendError(Exception):
    def __init__(self, reason: str, *, code: int | None = None, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent


class BaseSmsBackend:
    def send(self, message) -> str:
        raise NotImplementedError

    def line_type(self, phone: str) -> str | None:
        return None


@functools.cache
def _backend(path: str) -> BaseSmsBackend:
    return import_string(path)()


def get_sms_backend() -> BaseSmsBackend:
    return _backend(settings.SMS_BACKEND)
