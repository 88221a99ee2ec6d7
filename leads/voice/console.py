import sys
import uuid

from leads.voice import BaseVoiceBackend


class ConsoleBackend(BaseVoiceBackend):
    """Demo mode: prints each call-back and gives it a Twilio-shaped SID; no phone rings."""

    def place(self, call) -> str:
        sid = "CA" + uuid.uuid4().hex
        print(
            f"[voice] call-back from {call.from_number}: ring {call.placed_by.phone}, then {call.lead.phone} ({sid})",
            file=sys.stdout, flush=True,
        )
        return sid
