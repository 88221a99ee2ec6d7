"""What each connected inbox tab is shown when a lead changes (runs in the consumer's thread pool)."""

import dataclasses
import time

from inbox import fragments, selectors, services
from inbox.fragments import InboxState
from leads.selectors import agent_live_groups
from routing.models import Agent

# Events after which the list's counts may differ (a delivery receipt or a read changes none).
_COUNTING_EVENTS = {
    "lead.created", "lead.assigned", "lead.updated", "message.created",
    "call.missed", "call.answered", "call.placed", "call.status",
}

# How long a tab trusts the agent it loaded; re-read after that, so a switched-off account or a
# new role takes effect within seconds without a query per frame.
AGENT_FRESH_FOR = 10.0


@dataclasses.dataclass
class LiveSession:
    agent_id: int
    state: InboxState
    groups: list[str]
    agent: Agent | None = None
    agent_loaded_at: float = 0.0

    def current_agent(self) -> Agent | None:
        if self.agent is None or time.monotonic() - self.agent_loaded_at > AGENT_FRESH_FOR:
            self.agent, self.agent_loaded_at = _agent(self.agent_id), time.monotonic()
        return self.agent


def _agent(agent_id: int) -> Agent | None:
    return Agent.objects.select_related("office__brokerage", "user").filter(pk=agent_id, user__is_active=True).first()


def session_open(*, user, state: InboxState) -> LiveSession | None:
    agent = selectors.agent_for_user(user)
    if agent is None:
        return None
    groups = agent_live_groups(agent)
    if state.lead_id is not None:
        if selectors.lead_for_agent(agent=agent, lead_id=state.lead_id) is None:
            state.lead_id = None  # a thread they cannot see: no live updates for it either
        else:
            groups.append(f"lead.{state.lead_id}")
    return LiveSession(agent_id=agent.pk, state=state, groups=groups, agent=agent, agent_loaded_at=time.monotonic())


def catch_up(session: LiveSession) -> str:
    agent = session.current_agent()
    if agent is None:
        return ""
    state = session.state
    if state.screen == "dashboard":
        return fragments.live_tiles_fragment(agent=agent)
    html = fragments.list_fragment(agent=agent, state=state)
    lead = selectors.lead_for_agent(agent=agent, lead_id=state.lead_id) if state.lead_id else None
    if lead is not None:
        html += _thread_update(agent, lead, state)
    return html


def _thread_update(agent: Agent, lead, state: InboxState) -> str:
    """The open thread's header and timeline; its composer only if the gate's answer changed
    since the tab last showed it (re-rendering the composer would wipe a draft)."""
    parts = ["thread_header", "timeline"]
    gate = selectors.reply_gate(lead=lead)
    if fragments.gate_key(gate) != state.composer:
        parts.append("composer")
    return fragments.thread_fragments(agent=agent, lead=lead, state=state, parts=parts, gate=gate)


def frame_for_events(session: LiveSession, events_by_lead: dict[int, list[dict]]) -> str:
    """One frame for a burst of events: each lead's row (and open thread) once, the counts once."""
    agent = session.current_agent()
    if agent is None:
        return ""
    counting = any(e["type"] in _COUNTING_EVENTS for events in events_by_lead.values() for e in events)
    if session.state.screen == "dashboard":
        return fragments.live_tiles_fragment(agent=agent) if counting else ""
    html = [_lead_fragments(session, agent, lead_id, events) for lead_id, events in events_by_lead.items()]
    if counting:
        html.append(fragments.counts_fragment(agent=agent, state=session.state))
    return "".join(html)


def _lead_fragments(session: LiveSession, agent: Agent, lead_id: int, events: list[dict]) -> str:
    state = session.state
    thread_open = state.lead_id == lead_id
    if thread_open and any(e["type"] == "message.created" and e.get("direction") == "in" for e in events):
        services.lead_mark_read(agent=agent, lead_id=lead_id)  # the agent is looking at it
    # Routing and escalation name whom they alert; an assignment by someone else alerts its agent.
    alert_title = next((e["alert"]["title"] for e in events if agent.pk in e.get("alert", {}).get("agent_ids", ())), None)
    if alert_title is None and any(
        e["type"] == "lead.assigned" and e.get("agent_id") == agent.pk and e.get("actor_id") != agent.pk for e in events
    ):
        alert_title = "New lead assigned to you"
    # The row as the tab's view shows it; visibility is asked separately only when the row is not
    # in the view and the thread or an alert needs the lead.
    row = selectors.inbox_row(agent=agent, lead_id=lead_id, view=state.view, query=state.query)
    lead = row or (selectors.lead_for_agent(agent=agent, lead_id=lead_id) if thread_open or alert_title else None)
    html = [fragments.row_fragment(agent=agent, state=state, lead_id=lead_id, row=row)]
    if thread_open and lead is None:  # just handed to someone else: nothing of it is rendered
        html.append(fragments.thread_gone_fragment())
    elif thread_open:
        html.append(_thread_update(agent, lead, state))
    if alert_title and lead is not None:
        html.append(fragments.toast_fragment(agent=agent, lead=lead, title=alert_title))
    return "".join(html)
