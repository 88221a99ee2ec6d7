"""Voice backends for call-backs, chosen by the VOICE_BACKEND setting like the SMS backends.

Contract: `place(call) -> call_sid`: ring the agent's phone (`call.placed_by.phone`) from the
call's line; once the agent answers, the connect webhook bridges them to the lead. Any provider
failure raises VoiceCallError; `permanent` says whether trying again could help, which is what
the agent is told.
"""

import functools

from django.conf import settings
from django.utils.module_loading import import_string

# Twilio error codes for which trying again cannot help until someone fixes a number or the account.
PERMANENT_ERROR_CODES = {
    21210: "This line is not a number on the Twilio account, so it cannot place calls",
    21211: "The agent's phone number is not a valid phone number",
    21214: "The agent's phone number cannot be reached",
    21215: "Calling the agent's phone is not allowed by the Twilio account's geographic permissions",
}


class VoiceCallError(Exception):
    def __init__(self, reason: str, *, code: int | None = None, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent


class BaseVoiceBackend:
    def place(self, call) -> str:
        raise NotImplementedError


@functools.cache
def _backend(path: str) -> BaseVoiceBackend:
    return import_string(path)()


def get_voice_backend() -> BaseVoiceBackend:
    return _backend(settings.VOICE_BACKEND)
