"""The one gate every outbound text passes, at send time, whatever path created it.

Callers say why they are texting and pass what only they know (the office's texting policy,
when the caller last reached out, what non-reply texts already went); the gate answers allowed,
blocked with a reason a person can read, or deferred until the first minute the text may go.
The rules, in the order they are asked, are tabled in the README.
"""

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence

from compliance.models import ConsentEvent
from compliance.quiet_hours import (
    LEGAL_END, LEGAL_START, STRICT_STATE_DAILY_CAP, caller_texting_hours, quiet_until,
)
from compliance.selectors import (
    consent_deciding_event, do_not_contact_event, has_express_consent, number_is_landline,
    on_national_do_not_call_list,
)

# A confirmation of an opt-out may follow it within five minutes (FCC, 2024), never later.
CONFIRMATION_WITHIN = dt.timedelta(minutes=5)
# A text this soon after the caller called or texted answers them; later it is outreach.
REPLY_WINDOW = dt.timedelta(minutes=30)
# An inquiry lets a business answer someone on the national Do Not Call list for three months.
INQUIRY_RELATIONSHIP = dt.timedelta(days=90)
CAP_PERIOD = dt.timedelta(hours=24)


class Purpose(enum.Enum):
    TEXTBACK = "textback"  # the one informational reply to someone who just called
    REPLY = "reply"  # an agent texting the lead
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    HELP_REPLY = "help_reply"
    AGENT_ALERT = "agent_alert"  # a new-lead alert to an agent's own phone
    QUALIFICATION = "qualification"  # the next question to a caller who just answered the last one
    APPOINTMENT_CONFIRMATION = "appointment_confirmation"  # the time an agent booked with the caller
    FOLLOW_UP = "follow_up"  # an email in the sequence after an unanswered text-back
    CALL_BACK_TASK = "call_back_task"  # the sequence asking an agent to call the caller back


# Answers to a keyword the caller just sent: no quiet hours, no caps (CTIA expects them at once).
_KEYWORD_ANSWERS = {Purpose.OPT_IN_CONFIRMATION, Purpose.HELP_REPLY}


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    DEFERRED = "deferred"


class Rule(enum.Enum):
    """Which rule said no, so a page can offer the right way forward (call instead, wait)."""

    OPTED_OUT = "opted_out"
    DO_NOT_CONTACT = "do_not_contact"
    NATIONAL_DNC = "national_dnc"
    LANDLINE = "landline"
    STALE_CONFIRMATION = "stale_confirmation"
    NO_EXPRESS_CONSENT = "no_express_consent"
    QUIET_HOURS = "quiet_hours"
    MESSAGE_CAP = "message_cap"


@dataclasses.dataclass(frozen=True)
class TextingPolicy:
    """What a broker set for an office; each value can only be stricter than the law."""

    timezone: str = "America/New_York"  # the office's, for numbers whose own zone is unknown
    quiet_start: dt.time = LEGAL_START
    quiet_end: dt.time = LEGAL_END
    quiet_hours_for_replies: bool = False  # also hold text-backs and answers to a fresh inquiry
    daily_cap: int = 5  # non-reply texts per number per 24 hours


@dataclasses.dataclass(frozen=True)
class ContactHistory:
    last_inbound_at: dt.datetime | None = None  # the caller's latest call or text
    outreach_sent: tuple[dt.datetime, ...] = ()  # when non-reply texts went to the number, oldest first


@dataclasses.dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    reason: str = ""
    until: dt.datetime | None = None
    rule: Rule | None = None
    outreach: bool = False  # an allowed text that counts toward the caps: it answers nothing the caller just did

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED


ALLOWED = GateDecision(Verdict.ALLOWED)


def _blocked(rule: Rule, reason: str) -> GateDecision:
    return GateDecision(Verdict.BLOCKED, reason, rule=rule)


def gate_check(
    *, phone: str, senders: Sequence[str], purpose: Purpose, at: dt.datetime, policy: TextingPolicy = TextingPolicy(),
    history: ContactHistory = ContactHistory(), consent_event_id: int | None = None,
) -> GateDecision:
    """May we text `phone` from the line known by `senders` at `at`, for `purpose`?"""
    latest = consent_deciding_event(phone=phone, senders=senders)
    opted_out = latest is not None and latest.kind == ConsentEvent.Kind.OPT_OUT
    if purpose is Purpose.OPT_OUT_CONFIRMATION:
        # An opt-out blocks everything except the single, prompt confirmation of that very opt-out.
        if not (opted_out and latest.pk == consent_event_id):
            return _blocked(Rule.STALE_CONFIRMATION, "This confirmation no longer matches the number's latest opt-out.")
        if at - latest.created_at > CONFIRMATION_WITHIN:
            return _blocked(Rule.STALE_CONFIRMATION, "Too late: an opt-out may be confirmed within 5 minutes only.")
        return ALLOWED
    if purpose is not Purpose.AGENT_ALERT:  # the agent's own phone: only their own STOP applies
        dnc = do_not_contact_event(phone=phone)
        if dnc is not None:
            by = f" by {dnc.actor}" if dnc.actor else ""
            return _blocked(Rule.DO_NOT_CONTACT, f"On the brokerage's do-not-contact list (added{by} on {dnc.created_at:%Y-%m-%d}).")
    if opted_out:
        return _blocked(Rule.OPTED_OUT, "Opted out: the caller asked us to stop texting, or the carrier reported an opt-out.")
    if purpose is Purpose.AGENT_ALERT:
        return ALLOWED
    if purpose in (Purpose.FOLLOW_UP, Purpose.CALL_BACK_TASK):
        # Not texts: a landline takes a call, and neither counts toward the texting cap. A call back
        # answers the caller's inquiry; an email sequence is more than that and needs express consent.
        if purpose is Purpose.FOLLOW_UP and not has_express_consent(phone=phone, senders=senders):
            return _blocked(Rule.NO_EXPRESS_CONSENT, "Follow-up emails need the caller's express consent, and the record has none.")
        return _quiet_hours(phone=phone, at=at, policy=policy)
    if number_is_landline(phone=phone):
        return _blocked(Rule.LANDLINE, "Landline: the number cannot receive texts; call instead.")
    if purpose in _KEYWORD_ANSWERS:
        return ALLOWED
    # The text-back and an agent's text answer the caller while their call or text is fresh;
    # the same text long after (a retry past an outage, a follow-up) reaches out to them.
    answers_caller = history.last_inbound_at is not None and at - history.last_inbound_at <= REPLY_WINDOW
    if not answers_caller and on_national_do_not_call_list(phone=phone):
        inquired = history.last_inbound_at is not None and at - history.last_inbound_at <= INQUIRY_RELATIONSHIP
        if not inquired and not has_express_consent(phone=phone, senders=senders):
            return _blocked(
                Rule.NATIONAL_DNC,
                "On the national Do Not Call list, with no inquiry in the last 3 months and no express consent.",
            )
    return _timing(phone=phone, at=at, policy=policy, history=history, answers_caller=answers_caller)


def _quiet_hours(*, phone: str, at: dt.datetime, policy: TextingPolicy) -> GateDecision:
    hours = caller_texting_hours(
        phone=phone, office_start=policy.quiet_start, office_end=policy.quiet_end, fallback_tz=policy.timezone
    )
    until = quiet_until(hours=hours, at=at)
    if until is not None:
        return GateDecision(
            Verdict.DEFERRED, f"Quiet hours for this caller: contact {hours.describe()}.", until=until, rule=Rule.QUIET_HOURS,
        )
    return ALLOWED


def _timing(*, phone: str, at: dt.datetime, policy: TextingPolicy, history: ContactHistory, answers_caller: bool) -> GateDecision:
    """Quiet hours in the caller's time zone, then the daily cap; either defers, never drops."""
    hours = caller_texting_hours(
        phone=phone, office_start=policy.quiet_start, office_end=policy.quiet_end, fallback_tz=policy.timezone
    )
    if answers_caller and not policy.quiet_hours_for_replies:
        return ALLOWED  # answering someone who reached out a moment ago is not a solicitation
    until = quiet_until(hours=hours, at=at)
    if until is not None:
        return GateDecision(
            Verdict.DEFERRED, f"Quiet hours for this caller: texts go {hours.describe()}.", until=until,
            rule=Rule.QUIET_HOURS,
        )
    if answers_caller:
        return ALLOWED
    cap = min(policy.daily_cap, STRICT_STATE_DAILY_CAP) if hours.state else policy.daily_cap
    recent = [sent for sent in history.outreach_sent if at - sent < CAP_PERIOD]
    if len(recent) >= cap:
        # The cap frees a slot when the oldest text that fills it is 24 hours old; that moment
        # may itself fall in quiet hours.
        frees_at = recent[-cap] + CAP_PERIOD
        until = quiet_until(hours=hours, at=frees_at) or frees_at
        where = " (a Florida or Oklahoma number)" if hours.state and cap == STRICT_STATE_DAILY_CAP else ""
        return GateDecision(
            Verdict.DEFERRED, f"At most {cap} texts that are not replies per 24 hours{where}.", until=until,
            rule=Rule.MESSAGE_CAP,
        )
    return GateDecision(Verdict.ALLOWED, outreach=True)
