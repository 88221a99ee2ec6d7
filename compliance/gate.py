"""The one gate every outbound text passes, at send time, whatever path created it.

Callers pass why they are texting; the gate answers allowed, or blocked with a reason a person
can read. A later issue adds quiet hours ("deferred until") without changing this contract.
"""

import dataclasses
import datetime as dt
import enum

from compliance.models import ConsentEvent
from compliance.selectors import consent_latest_state_event, number_is_landline


class Purpose(enum.Enum):
    TEXTBACK = "textback"  # the one informational reply to someone who just called
    REPLY = "reply"  # an agent answering the lead
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    HELP_REPLY = "help_reply"
    AGENT_ALERT = "agent_alert"  # a new-lead alert to an agent's own phone


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    DEFERRED = "deferred"


class Rule(enum.Enum):
    """Which rule said no, so a page can offer the right way forward (call instead, schedule)."""

    OPTED_OUT = "opted_out"
    LANDLINE = "landline"
    STALE_CONFIRMATION = "stale_confirmation"


@dataclasses.dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    reason: str = ""
    until: dt.datetime | None = None
    rule: Rule | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED


ALLOWED = GateDecision(Verdict.ALLOWED)


def gate_check(*, phone: str, sender: str, purpose: Purpose, consent_event_id: int | None = None) -> GateDecision:
    """May we text `phone` from `sender` now, for `purpose`?

    An opt-out blocks everything except the single confirmation of that very opt-out.
    """
    latest = consent_latest_state_event(phone=phone, sender=sender)
    opted_out = latest is not None and latest.kind == ConsentEvent.Kind.OPT_OUT
    if purpose is Purpose.OPT_OUT_CONFIRMATION:
        if opted_out and latest.pk == consent_event_id:
            return ALLOWED
        return GateDecision(
            Verdict.BLOCKED, "This confirmation no longer matches the number's latest opt-out.", rule=Rule.STALE_CONFIRMATION
        )
    if opted_out:
        return GateDecision(
            Verdict.BLOCKED, "Opted out: the caller asked us to stop texting, or the carrier reported an opt-out.",
            rule=Rule.OPTED_OUT,
        )
    if number_is_landline(phone=phone):
        return GateDecision(Verdict.BLOCKED, "Landline: the number cannot receive texts; call instead.", rule=Rule.LANDLINE)
    return ALLOWED
