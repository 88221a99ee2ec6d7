import uuid

from leads.sms import BaseSmsBackend, SmsSendError

# What tests read: every text handed to the backend, in order.
outbox: list[dict] = []
# Tests put an SmsSendError here to make the next send fail the way Twilio would.
failures: list[SmsSendError] = []
# What a line-type lookup answers for a number (every other number is a mobile), and each lookup made.
line_types: dict[str, str | None] = {}
lookups: list[str] = []


class LocmemBackend(BaseSmsBackend):
    def send(self, message) -> str:
        if failures:
            raise failures.pop(0)
        sid = "SM" + uuid.uuid4().hex
        outbox.append({"sid": sid, "to": message.recipient, "from": message.line.number, "body": message.body, "message_id": message.pk})
        return sid

    def line_type(self, phone: str) -> str | None:
        lookups.append(phone)
        return line_types.get(phone, "mobile")
