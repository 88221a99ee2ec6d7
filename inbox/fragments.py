"""HTML fragments of the inbox, rendered for one agent: the same pieces make the first page,
answer the agent's own actions, and travel over the websocket as htmx out-of-band swaps."""

import csv
import dataclasses
import json
from urllib.parse import urlencode

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from compliance.gate import GateDecision, Verdict
from compliance.selectors import consent_history
from inbox import selectors
from leads import metrics
from leads.models import Lead
from routing.models import Agent, LeadType

TEMPLATE = "inbox/inbox.html"
SOCKET_PATH = "ws/inbox/"  # routed to InboxConsumer in textback_site/asgi.py
THREAD_PARTS = ("thread_header", "timeline", "panel", "composer")


@dataclasses.dataclass
class InboxState:
    """What one browser tab shows: the list's filter, search and page, and the open thread."""

    view: str = "open"
    query: str = ""
    page: int = 1
    lead_id: int | None = None
    composer: str = ""  # what the open thread's composer shows (`gate_key`), so it is re-rendered only when that changes
    screen: str = "inbox"  # or "dashboard": a tab showing the dashboard's live tiles, not the list

    @classmethod
    def from_params(cls, params) -> "InboxState":
        view = params.get("view") or "open"
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        try:
            lead_id = int(params["lead"]) if params.get("lead") else None
        except ValueError:
            lead_id = None
        return cls(
            view=view if view in selectors.VIEW_KEYS else "open", query=(params.get("q") or "")[:100], page=page,
            lead_id=lead_id, composer=(params.get("composer") or "")[:40],
            screen="dashboard" if params.get("screen") == "dashboard" else "inbox",
        )

    def list_params(self) -> str:
        """The list's query string, for links that keep the tab's filter and search."""
        params = {"view": self.view, "q": self.query, "page": self.page}
        return urlencode({k: v for k, v in params.items() if v and (k, v) not in (("view", "open"), ("page", 1))})

    @property
    def hx_vals(self) -> str:
        """The list's state, posted along with every action so its answer keeps the same view."""
        return json.dumps({"view": self.view, "q": self.query, "page": self.page})

    @property
    def socket_url(self) -> str:
        params = {"view": self.view, "q": self.query, "page": self.page, "lead": self.lead_id or "", "composer": self.composer}
        if self.screen != "inbox":
            params = {"screen": self.screen}
        return "/" + SOCKET_PATH + "?" + urlencode({k: v for k, v in params.items() if v})


def gate_key(decision: GateDecision) -> str:
    """What the composer shows for a gate decision: it changes only when this does."""
    return f"{decision.verdict.value}:{decision.rule.value if decision.rule else ''}"


def _render(part: str, context: dict) -> str:
    # Times read in the agent's office's zone, whichever process renders them.
    agent = context.get("agent")
    with timezone.override(agent.office.tz if agent else None):
        return render_to_string(f"{TEMPLATE}#{part}", context)


def _tabs(*, agent: Agent, state: InboxState) -> list[dict]:
    counts = selectors.inbox_counts(agent=agent)
    return [
        {"label": view.label, "count": counts.get(view.key), "current": view.key == state.view,
         "query": InboxState(view=view.key, query=state.query).list_params()}
        for view in selectors.VIEWS
    ]


def list_context(*, agent: Agent, state: InboxState) -> dict:
    return {
        "agent": agent, "state": state,
        "page_obj": selectors.inbox_page(agent=agent, view=state.view, query=state.query, page=state.page),
        "tabs": _tabs(agent=agent, state=state),
    }


def thread_context(*, agent: Agent, lead: Lead, state: InboxState, parts=THREAD_PARTS, gate: GateDecision | None = None) -> dict:
    """What the thread's `parts` show; a live update of the header and timeline reads no more."""
    gate = gate or selectors.reply_gate(lead=lead)
    if "composer" in parts:
        state.composer = gate_key(gate)
    context = {
        "agent": agent, "state": state, "lead": lead,
        "gate": gate, "gate_blocked": gate.verdict is Verdict.BLOCKED, "gate_deferred": gate.verdict is Verdict.DEFERRED,
        "can_claim": lead.assigned_agent_id is None and agent.role != Agent.Role.BROKER,
        "consent_basis": selectors.consent_basis(lead=lead) if gate.verdict is not Verdict.BLOCKED else "",
        "qualification_asking": selectors.qualification_asking(lead=lead),
    }
    if "timeline" in parts:
        context["timeline"] = selectors.thread_timeline(lead=lead)
    if "composer" in parts:
        context["snippets"] = selectors.reply_snippets(lead=lead, agent=agent)
    if "panel" in parts:
        context.update(
            transfer_targets=selectors.transfer_targets(lead=lead),
            outcomes=[choice for choice in Lead.Outcome.choices if choice[0]],
            lead_types=LeadType.choices,
            consent_history=consent_history(phone=lead.phone),
            is_manager=agent.role != Agent.Role.AGENT,
        )
    return context


def thread_fragments(
    *, agent: Agent, lead: Lead, state: InboxState, parts=THREAD_PARTS, feedback: str = "", error: bool = False,
    gate: GateDecision | None = None,
) -> str:
    """The open thread's parts as out-of-band swaps, plus a line of feedback for the agent."""
    context = {**thread_context(agent=agent, lead=lead, state=state, parts=parts, gate=gate), "oob": True}
    html = [_render(part, context) for part in parts]
    if feedback or error:
        html.append(_render("feedback", {"oob": True, "feedback": feedback, "error": error}))
    return "".join(html)


def feedback_fragment(message: str, *, error: bool) -> str:
    """A line telling the agent what happened (or why it did not)."""
    return _render("feedback", {"oob": True, "feedback": message, "error": error})


def row_fragment(*, agent: Agent, state: InboxState, lead_id: int, row: Lead | None = None) -> str:
    """Put one conversation where the tab's list wants it, or take it out.

    The page may or may not hold the row (another page, or it just arrived): the row goes to a
    holding list and the page's script puts it in its sorted place, replacing the old one; a
    lead that no longer belongs in the view is removed.
    """
    row = row or selectors.inbox_row(agent=agent, lead_id=lead_id, view=state.view, query=state.query)
    if row is None:
        return row_removed_fragment(lead_id=lead_id)
    return _render("row_upsert", {"agent": agent, "state": state, "row": row})


def row_removed_fragment(*, lead_id: int) -> str:
    return _render("row_delete", {"lead_id": lead_id})


def counts_fragment(*, agent: Agent, state: InboxState) -> str:
    return _render("counts", {"oob": True, "agent": agent, "tabs": _tabs(agent=agent, state=state)})


def list_fragment(*, agent: Agent, state: InboxState) -> str:
    return _render("conversation_list", {**list_context(agent=agent, state=state), "oob": True})


def thread_gone_fragment() -> str:
    return _render("thread_gone", {"oob": True})


def toast_fragment(*, agent: Agent, lead: Lead, title: str) -> str:
    return _render("toast", {"oob": True, "agent": agent, "lead": lead, "title": title})


DASHBOARD_COLUMNS = [
    ("inbound_calls", "Inbound calls"), ("missed_calls", "Missed calls"), ("missed_rate", "Missed %"),
    ("textbacks_sent", "Text-backs sent"), ("delivered_rate", "Delivered %"), ("reply_rate", "Reply %"),
    ("speed_to_lead_p50", "Speed to lead p50 (s)"), ("speed_to_lead_p90", "Speed to lead p90 (s)"),
    ("response_p50", "Response p50 (s)"), ("response_p90", "Response p90 (s)"),
    ("response_business_p50", "Response p50, business hours (s)"), ("never_answered", "Never answered"),
    ("escalations", "Escalations"), ("recovered", "Recovered"), ("recovery_rate", "Recovery %"),
    ("appointments", "Appointments"), ("opt_out_rate", "Opt-out %"), ("landline_rate", "Landline %"),
]


def dashboard_csv(board, period) -> HttpResponse:
    """The dashboard's rows and total as a spreadsheet, the same numbers the page shows."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="textback-{board.dimension}-{period.first_day:%Y-%m-%d}-to-{period.last_day:%Y-%m-%d}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow([metrics.DIMENSIONS[board.dimension], *(label for _, label in DASHBOARD_COLUMNS)])
    for row in [*board.rows, board.total]:
        writer.writerow([row.label, *("" if getattr(row, field) is None else getattr(row, field) for field, _ in DASHBOARD_COLUMNS)])
    return response


def live_tiles_fragment(*, agent: Agent, oob: bool = True) -> str:
    """The dashboard's live tiles: today's missed calls, the leads waiting and the oldest wait."""
    with timezone.override(agent.office.tz):
        return render_to_string("inbox/dashboard.html#live_tiles", {"tiles": metrics.live_tiles(viewer=agent), "oob": oob})
