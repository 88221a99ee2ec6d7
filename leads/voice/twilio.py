import logging

from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException

from leads.voice import PERMANENT_ERROR_CODES, BaseVoiceBackend, VoiceCallError
from textback_site.twilio_client import twilio_client

logger = logging.getLogger(__name__)

# Every progress event, so the inbox can show "ringing your phone" and "connected" as they happen.
STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]


class TwilioBackend(BaseVoiceBackend):
    """Places the agent's leg through Twilio's REST API with the official SDK.

    The call's id rides in both callback URLs, so a callback that overtakes the worker storing
    the SID still finds its row.
    """

    def place(self, call) -> str:
        query = f"?call={call.pk}"
        try:
            created = twilio_client().calls.create(
                to=call.placed_by.phone,
                from_=call.from_number,
                url=settings.PUBLIC_BASE_URL + reverse("twilio-voice-call-back-connect") + query,
                method="POST",
                # Give up before the agent's carrier voicemail would answer: Twilio would take the
                # greeting for the agent and bridge the lead to it.
                timeout=call.line.ring_seconds,
                status_callback=settings.PUBLIC_BASE_URL + reverse("twilio-voice-call-back-status") + query,
                status_callback_method="POST",
                status_callback_event=STATUS_CALLBACK_EVENTS,
            )
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            # 401, 403 and 404 are our configuration (a rotated token, a wrong account): worth a
            # log line for the operator, and not the agent's fault.
            if exc.status in (401, 403, 404):
                logger.error("Twilio refused our credentials or account (HTTP %s): %s", exc.status, exc.msg)
            reason = PERMANENT_ERROR_CODES.get(code) or exc.msg or f"Twilio answered HTTP {exc.status}"
            raise VoiceCallError(reason, code=code, permanent=code in PERMANENT_ERROR_CODES or exc.status == 400) from exc
        except TwilioException as exc:
            raise VoiceCallError(f"Twilio error: {exc}", permanent=False) from exc
        except OSError as exc:  # connection refused, reset, timeout: Twilio unreachable for now
            raise VoiceCallError(f"Twilio unreachable: {exc}", permanent=False) from exc
        return created.sid
