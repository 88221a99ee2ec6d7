import logging

from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException

from compliance.models import NumberProfile
from leads.sms import PERMANENT_ERROR_CODES, BaseSmsBackend, SmsSendError
from textback_site.twilio_client import twilio_client

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0  # seconds, to connect and again to read the answer


class TwilioBackend(BaseSmsBackend):
    """Sends through Twilio's REST API with the official SDK."""

    def send(self, message) -> str:
        line = message.line
        sender = {"messaging_service_sid": line.messaging_service_sid} if line.messaging_service_sid else {"from_": line.number}
        try:
            created = twilio_client().messages.create(
                to=message.recipient,
                body=message.body,
                status_callback=settings.PUBLIC_BASE_URL + reverse("twilio-sms-status"),
                **sender,
            )
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            # A 400 is Twilio refusing this message; 401, 403 and 404 are our configuration
            # (a rotated token, a wrong account), which must not fail every text for good.
            permanent = code in PERMANENT_ERROR_CODES or exc.status == 400
            if exc.status in (401, 403, 404):
                logger.error("Twilio refused our credentials or account (HTTP %s): %s", exc.status, exc.msg)
            reason = PERMANENT_ERROR_CODES.get(code) or exc.msg or f"Twilio answered HTTP {exc.status}"
            raise SmsSendError(reason, code=code, permanent=permanent) from exc
        except TwilioException as exc:
            raise SmsSendError(f"Twilio error: {exc}", permanent=False) from exc
        except OSError as exc:  # connection refused, reset, timeout: Twilio unreachable for now
            raise SmsSendError(f"Twilio unreachable: {exc}", permanent=False) from exc
        return created.sid

    def line_type(self, phone: str) -> str | None:
        """Lookup v2's line type intelligence (a paid lookup: we ask once per number).

        It stands between a missed call and its text-back, so it gets two seconds to connect and
        two to answer: a slow Lookup must not cost the caller their text (error 30006 tells us
        about a landline afterwards)."""
        try:
            result = twilio_client(timeout=LOOKUP_TIMEOUT).lookups.v2.phone_numbers(phone).fetch(fields="line_type_intelligence")
        except (TwilioException, OSError) as exc:
            logger.warning("line type lookup for %s failed: %s", phone, exc)
            return None
        line_type = (result.line_type_intelligence or {}).get("type")
        if not line_type:
            return None
        return line_type if line_type in NumberProfile.LineType.values else NumberProfile.LineType.OTHER
