import uuid

from leads.voice import BaseVoiceBackend, VoiceCallError

# What tests read: every call-back handed to the backend, in order.
calls: list[dict] = []
# Tests put a VoiceCallError here to make the next call fail the way Twilio would.
failures: list[VoiceCallError] = []


class LocmemBackend(BaseVoiceBackend):
    def place(self, call) -> str:
        if failures:
            raise failures.pop(0)
        sid = "CA" + uuid.uuid4().hex
        calls.append({"sid": sid, "to": call.placed_by.phone, "from": call.from_number, "lead": call.lead.phone, "call_id": call.pk})
        return sid
