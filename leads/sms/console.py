import sys
import uuid

from leads.sms import BaseSmsBackend


class ConsoleBackend(BaseSmsBackend):
    """Demo mode: prints each text and gives it a Twilio-shaped SID; nothing leaves the machine."""

    def send(self, message) -> str:
        sid = "SM" + uuid.uuid4().hex
        print(f"[sms] {message.line.number} -> {message.recipient} ({sid}): {message.body}", file=sys.stdout, flush=True)
        return sid
