"""What each connected inbox tab is shown when a lead changes (runs in the consumer's thread pool)."""

import dataclasses

from inbox import fragments, selectors, services
from inbox.fragments import InboxState
from leads.selectors import agent_live_groups
from routing.models import Agent

# Events after which the lead belongs at the top of a list sorted by last activity.
_ACTIVITY_EVENTS = {"lead.created", "message.created", "call.missed", "call.answered", "call.placed", "lead.assigned"}


@dataclasses.dataclass
class LiveSession:
    agent_id: int
    state: InboxState
    groups: list[str]
    composer_gate: tuple | None = None  # what the open thread's composer last showed


def _gate_key(lead) -> tuple:
    decision = selectors.reply_gate(lead=lead)
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
            composer_gate = _gate_key(selectors.lead_for_agent(agent=agent, lead_id=state.lead_id))
    return LiveSession(agent_id=agent.pk, state=state, groups=groups, composer_gate=composer_gate)


def catch_up(session: LiveSession) -> str:
    agent = _agent(session.agent_id)
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
    agent = _agent(session.agent_id)
    if agent is None:
        return ""
    html = [_lead_fragments(session, agent, lead_id, events) for lead_id, events in events_by_lead.items()]
    if any(e["type"] in _COUNTING_EVENTS for events in events_by_lead.values() for e in events):
        html.append(fragments.counts_fragment(agent=agent, state=session.state))
    return "".join(html)


def _lead_fragments(session: LiveSession, agent: Agent, lead_id: int, events: list[dict]) -> str:
    state = session.state
    lead = selectors.lead_for_agent(agent=agent, lead_id=lead_id)
    thread_open = state.lead_id == lead_id
    if lead is None:  # never theirs, or just handed to someone else: nothing of it is rendered
        return fragments.row_removed_fragment(lead_id=lead_id) + (fragments.thread_gone_fragment() if thread_open else "")
    types = {e["type"] for e in events}
    if thread_open and any(e["type"] == "message.created" and e.get("direction") == "in" for e in events):
        services.lead_mark_read(agent=agent, lead=lead)  # the agent is looking at it
    html = [fragments.row_fragments(agent=agent, state=state, lead_id=lead_id, to_top=bool(types & _ACTIVITY_EVENTS))]
    if thread_open:
        parts = ["thread_header", "timeline"]
        gate = _gate_key(lead)
        if gate != session.composer_gate:  # re-rendering the composer would wipe a draft: only when it must change
            session.composer_gate = gate
            parts.append("composer")
        html.append(fragments.thread_fragments(agent=agent, lead=lead, state=state, parts=parts))
    assigned_to_me = [
        e for e in events if e["type"] == "lead.assigned" and e.get("agent_id") == agent.pk and e.get("actor_id") != agent.pk
    ]
    if assigned_to_me:
        html.append(fragments.toast_fragment(agent=agent, lead=lead, title="New lead assigned to you"))
    return "".join(html)
