"""What each connected inbox tab is shown when a lead changes (runs in the consumer's thread pool)."""

import dataclasses
import time

from inbox import fragments, selectors, services
from compliance.gate import GateDecision
from inbox.fragments import InboxState
from leads.selectors import agent_live_groups
from routing.models import Agent

# Events after which the lead belongs at the top of a list sorted by last activity.
_ACTIVITY_EVENTS = {"lead.created", "message.created", "call.missed", "call.answered", "call.placed", "lead.assigned"}


# How long a tab trusts the agent it loaded; re-read after that, so a switched-off account or a
# new role takes effect within seconds without a query per frame.
AGENT_FRESH_FOR = 10.0


@dataclasses.dataclass
class LiveSession:
    agent_id: int
    state: InboxState
    groups: list[str]
    composer_gate: tuple | None = None  # what the open thread's composer last showed
    agent: Agent | None = None
    agent_loaded_at: float = 0.0

    def current_agent(self) -> Agent | None:
        if self.agent is None or time.monotonic() - self.agent_loaded_at > AGENT_FRESH_FOR:
            self.agent, self.agent_loaded_at = _agent(self.agent_id), time.monotonic()
        return self.agent


def _gate_key(decision: GateDecision) -> tuple:
    return decision.verdict, decision.rule, decision.until


def _agent(agent_id: int) -> Agent | None:
    # Fetched per event: an agent whose account is switched off stops receiving at once.
    return Agent.objects.select_related("office__brokerage", "user").filter(pk=agent_id, user__is_active=True).first()


def session_open(*, user_id: int, state: InboxState) -> LiveSession | None:
    agent = Agent.objects.select_related("office__brokerage").filter(user_id=user_id, user__is_active=True).first()
    if agent is None:
        return None
    groups, composer_gate = agent_live_groups(agent), None
    if state.lead_id is not None:
        if selectors.lead_for_agent(agent=agent, lead_id=state.lead_id) is None:
            state.lead_id = None  # a thread they cannot see: no live updates for it either
        else:
            groups.append(f"lead.{state.lead_id}")
            composer_gate = _gate_key(selectors.reply_gate(lead=selectors.lead_for_agent(agent=agent, lead_id=state.lead_id)))
    return LiveSession(agent_id=agent.pk, state=state, groups=groups, composer_gate=composer_gate)


def catch_up(session: LiveSession) -> str:
    agent = session.current_agent()
    if agent is None:
        return ""
    html = fragments.list_fragment(agent=agent, state=session.state)
    lead = selectors.lead_for_agent(agent=agent, lead_id=session.state.lead_id) if session.state.lead_id else None
    if lead is not None:
        html += fragments.thread_fragments(agent=agent, lead=lead, state=session.state, parts=("thread_header", "timeline"))
    return html


# Events after which the list's counts may differ (a delivery receipt changes none of them).
_COUNTING_EVENTS = _ACTIVITY_EVENTS | {"lead.updated", "call.status"}


def frame_for_events(session: LiveSession, events_by_lead: dict[int, list[dict]]) -> str:
    """One frame for a burst of events: each lead's row (and open thread) once, the counts once."""
    agent = session.current_agent()
    if agent is None:
        return ""
    html = [_lead_fragments(session, agent, lead_id, events) for lead_id, events in events_by_lead.items()]
    if any(e["type"] in _COUNTING_EVENTS for events in events_by_lead.values() for e in events):
        html.append(fragments.counts_fragment(agent=agent, state=session.state))
    return "".join(html)


def _lead_fragments(session: LiveSession, agent: Agent, lead_id: int, events: list[dict]) -> str:
    state = session.state
    thread_open = state.lead_id == lead_id
    if thread_open and any(e["type"] == "message.created" and e.get("direction") == "in" for e in events):
        services.lead_mark_read(agent=agent, lead_id=lead_id)  # the agent is looking at it
    # The row as the tab's view shows it; only when it is not there does visibility need asking.
    row = selectors.inbox_row(agent=agent, lead_id=lead_id, view=state.view, query=state.query)
    lead = row or (selectors.lead_for_agent(agent=agent, lead_id=lead_id) if thread_open else None)
    if lead is None:  # never theirs, just handed to someone else, or out of this view
        return fragments.row_removed_fragment(lead_id=lead_id) + (fragments.thread_gone_fragment() if thread_open else "")
    types = {e["type"] for e in events}
    html = [fragments.row_fragments(agent=agent, state=state, row=row, lead_id=lead_id, to_top=bool(types & _ACTIVITY_EVENTS))]
    if thread_open:
        parts = ["thread_header", "timeline"]
        gate = selectors.reply_gate(lead=lead)
        if _gate_key(gate) != session.composer_gate:  # re-rendering the composer would wipe a draft: only when it must
            session.composer_gate = _gate_key(gate)
            parts.append("composer")
        html.append(fragments.thread_fragments(agent=agent, lead=lead, state=state, parts=parts, gate=gate))
    assigned_to_me = [
        e for e in events if e["type"] == "lead.assigned" and e.get("agent_id") == agent.pk and e.get("actor_id") != agent.pk
    ]
    if assigned_to_me:
        html.append(fragments.toast_fragment(agent=agent, lead=lead, title="New lead assigned to you"))
    return "".join(html)
