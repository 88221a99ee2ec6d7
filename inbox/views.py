"""The agent inbox's pages and actions: thin adapters over inbox.selectors and inbox.services.

Every action answers an htmx request with out-of-band fragments (the same ones the websocket
sends) and a plain form post with a redirect, so the page also works without JavaScript.
"""

import datetime as dt
import functools

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance.services import WEB_FORM_DISCLOSURE, web_form_opt_in_record
from inbox import fragments, selectors, services
from inbox.fragments import InboxState
from leads import appointments, charts, metrics
from leads.call_back import CallBackRefused, call_back_start
from routing.models import Agent, Brokerage


def agent_required(view):
    """Signed in and linked to an agent of the brokerage; the agent rides on the request.

    An htmx action whose session has expired sends the whole page to the login form, rather than
    swapping the login page into nothing.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = f"{reverse(settings.LOGIN_URL)}?next={request.htmx.current_url_abs_path or '/'}"
                return response
            return redirect_to_login(request.get_full_path())
        request.agent = selectors.agent_for_user(request.user)
        if request.agent is None:
            return render(request, "inbox/no_agent.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _state(request, lead_id: int | None = None) -> InboxState:
    state = InboxState.from_params(request.GET if request.method == "GET" else request.POST)
    state.lead_id = lead_id
    return state


def _page(request, state: InboxState, lead=None):
    agent = request.agent
    context = {**fragments.list_context(agent=agent, state=state), "lead": None}
    if lead is not None:
        services.lead_mark_read(agent=agent, lead_id=lead.pk)
        context.update(fragments.thread_context(agent=agent, lead=lead, state=state))
    with timezone.override(agent.office.tz):
        return render(request, "inbox/inbox.html", context)


class WebFormOptInForm(forms.Form):
    phone = forms.CharField(label="Mobile number", max_length=32)
    name = forms.CharField(label="Your name (optional)", max_length=120, required=False)
    agree = forms.BooleanField(label="I agree to receive texts", error_messages={"required": "Tick the box to agree to texts."})
    # A field people never see: a form robot fills it in, and nothing is recorded.
    website = forms.CharField(required=False, widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}))

    def clean_phone(self) -> str:
        try:
            number = phonenumbers.parse(self.cleaned_data["phone"], "US")
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise forms.ValidationError("Give a mobile number, e.g. (305) 555-0123.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


WEB_FORM_LIMIT = 10  # opt-ins per address per hour: enough for a family, not for a script


@require_http_methods(["GET", "POST"])
def web_form_opt_in(request):
    """The brokerage's public "text me" form: express written consent, recorded in the ledger
    with the exact words the person agreed to. No sign-in: callers use it."""
    brokerage = Brokerage.objects.order_by("pk").first()
    if brokerage is None:
        raise Http404("No brokerage is set up yet.")
    disclosure = WEB_FORM_DISCLOSURE.format(brokerage=brokerage.name)
    form = WebFormOptInForm(request.POST or None)
    status = 200
    if request.method == "POST":
        ip = request.META.get("REMOTE_ADDR", "")
        throttle = f"web-form-opt-in:{ip}"
        cache.add(throttle, 0, timeout=3600)
        if cache.incr(throttle) > WEB_FORM_LIMIT:
            return render(request, "inbox/opt_in.html", {"form": form, "disclosure": disclosure, "limited": True}, status=429)
        if form.is_valid() and not form.cleaned_data["website"]:
            web_form_opt_in_record(
                phone=form.cleaned_data["phone"], brokerage=brokerage.name, name=form.cleaned_data["name"],
                ip=ip, user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
            return render(request, "inbox/opt_in.html", {"done": form.cleaned_data["phone"], "brokerage": brokerage})
        status = 400
    return render(request, "inbox/opt_in.html", {"form": form, "disclosure": disclosure, "brokerage": brokerage}, status=status)


@login_required
@require_GET
def home(request):
    """Agents land in their inbox; an account that is not an agent sees what the product does."""
    request.agent = selectors.agent_for_user(request.user)
    if request.agent is None:
        return render(request, "home.html")
    return _page(request, _state(request))


@agent_required
@require_GET
def thread(request, lead_id: int):
    lead = _visible_lead(request, lead_id)
    return _page(request, _state(request, lead.pk), lead)


NOT_IN_INBOX = "This conversation is not in your inbox (it may have just gone to someone else)."


def _visible_lead(request, lead_id: int):
    lead = selectors.lead_for_agent(agent=request.agent, lead_id=lead_id)
    if lead is None:
        raise Http404(NOT_IN_INBOX)
    return lead


def _lead_action(parts=("thread_header", "timeline", "panel")):
    """POST-only action on a lead the agent can see: 404 otherwise; the service's refusal is a
    400 (or 409 when someone else changed the lead first) that changes nothing."""

    def decorate(action):
        @agent_required
        @require_POST
        @functools.wraps(action)
        def wrapper(request, lead_id: int):
            lead = selectors.lead_for_agent(agent=request.agent, lead_id=lead_id)
            if lead is None:
                if request.htmx:
                    return HttpResponse(fragments.feedback_fragment(NOT_IN_INBOX, error=True), status=404)
                raise Http404(NOT_IN_INBOX)
            state = _state(request, lead.pk)
            try:
                done = action(request, lead)
            except (services.ActionRefused, CallBackRefused) as refused:
                status = 409 if getattr(refused, "conflict", False) else 400
                if request.htmx:
                    return HttpResponse(fragments.feedback_fragment(refused.reason, error=True), status=status)
                return HttpResponse(refused.reason, status=status, content_type="text/plain; charset=utf-8")
            if not request.htmx:
                return redirect(_thread_url(lead.pk, state))
            visible = selectors.lead_for_agent(agent=request.agent, lead_id=lead.pk)
            if visible is None:  # handed to someone this agent cannot see: the pane says so
                response = HttpResponse(
                    fragments.thread_gone_fragment()
                    + fragments.row_removed_fragment(lead_id=lead.pk)
                    + fragments.feedback_fragment(done, error=False)
                )
                response["HX-Push-Url"] = reverse("home") + _query(state)
                return response
            return HttpResponse(fragments.thread_fragments(agent=request.agent, lead=visible, state=state, parts=parts, feedback=done))

        return wrapper

    return decorate


def _query(state: InboxState) -> str:
    params = state.list_params()
    return f"?{params}" if params else ""


def _thread_url(lead_id: int, state: InboxState) -> str:
    return reverse("inbox-thread", args=[lead_id]) + _query(state)


@_lead_action(parts=("thread_header", "timeline", "composer"))
def reply(request, lead):
    message = services.agent_reply_send(agent=request.agent, lead=lead, body=request.POST.get("body", ""))
    if message.next_attempt_at and message.next_attempt_at > timezone.now():
        return f"Scheduled: it goes at {timezone.localtime(message.next_attempt_at, request.agent.office.tz):%a %-I:%M %p}."
    return ""


@_lead_action()
def claim(request, lead):
    services.lead_claim(agent=request.agent, lead=lead)
    return "The lead is yours."


@_lead_action()
def transfer(request, lead):
    target_id = request.POST.get("agent", "")
    to_agent = None
    if target_id != "pool":
        to_agent = Agent.objects.select_related("user").filter(pk=target_id if target_id.isdigit() else None).first()
        if to_agent is None:
            raise services.ActionRefused("Choose who gets the lead.")
    lead = services.lead_transfer(actor=request.agent, lead=lead, to_agent=to_agent, reason=request.POST.get("reason", ""))
    return f"Transferred to {to_agent.name}." if to_agent else "Returned to the office pool."


@_lead_action()
def outcome(request, lead):
    appointment_at = None
    if request.POST.get("appointment_at"):
        try:
            naive = dt.datetime.fromisoformat(request.POST["appointment_at"])
        except ValueError:
            raise services.ActionRefused("Give the appointment as a date and time.")
        appointment_at = timezone.make_aware(naive, lead.office.tz) if timezone.is_naive(naive) else naive
    lead = services.lead_outcome_set(
        actor=request.agent, lead=lead, outcome=request.POST.get("outcome", ""), appointment_at=appointment_at
    )
    return f"Outcome: {lead.get_outcome_display()}."


@agent_required
@require_GET
def appointment_ics(request, lead_id: int):
    """The lead's appointment as a calendar file, for an agent whose invite email went astray."""
    lead = _visible_lead(request, lead_id)
    if lead.appointment_at is None:
        raise Http404("This lead has no appointment.")
    response = HttpResponse(
        appointments.appointment_ics(lead=lead, agent=lead.assigned_agent or request.agent),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{lead.pk}.ics"'
    return response


@_lead_action()
def note(request, lead):
    services.lead_note_add(actor=request.agent, lead=lead, text=request.POST.get("text", ""))
    return "Note added."


@_lead_action()
def details(request, lead):
    services.lead_details_update(
        actor=request.agent, lead=lead, name=request.POST.get("name", ""), email=request.POST.get("email", ""),
        lead_type=request.POST.get("lead_type", ""), zip_code=request.POST.get("zip_code"), city=request.POST.get("city"),
        price=request.POST.get("price"), language=request.POST.get("language"),
    )
    return "Details saved."


@_lead_action(parts=("thread_header", "timeline", "panel", "composer"))
def consent(request, lead):
    event = services.consent_record_by_agent(
        actor=request.agent, lead=lead, action=request.POST.get("action", ""), note=request.POST.get("note", "")
    )
    if event.source == event.Source.INTERNAL_DNC:
        return "On the do-not-contact list: nothing will be texted to this number."
    return f"Recorded: {event.get_kind_display().lower()}."


@_lead_action(parts=("thread_header", "timeline", "panel", "composer"))
def revocation(request, lead):
    decision, message_id = request.POST.get("decision", ""), request.POST.get("message", "")
    if decision not in ("opt_out", "not_opt_out") or not message_id.isdigit():
        raise services.ActionRefused("Say whether the text asks us to stop texting.")
    services.revocation_review(actor=request.agent, lead=lead, message_id=int(message_id), opted_out=decision == "opt_out")
    if decision == "opt_out":
        return "Opted out: nothing more is texted to this number; one confirmation goes now."
    return "Noted: not an opt-out."


@_lead_action(parts=("thread_header", "timeline"))
def call_back_done(request, lead):
    services.lead_call_back_done(actor=request.agent, lead=lead)
    return "Call-back done."


@_lead_action()
def call_back(request, lead):
    call_back_start(agent=request.agent, lead=lead)
    if settings.DEMO_MODE:
        return "Demo mode: the call-back is printed on the server's console; no phone rings."
    return f"Calling your phone ({request.agent.phone}); answer it to be connected to the lead."


@agent_required
@require_POST
def duty(request):
    agent = services.agent_duty_set(agent=request.agent, on_duty=request.POST.get("on_duty") == "1")
    if request.htmx:
        return render(request, "inbox/inbox.html#duty_toggle", {"agent": agent})
    next_url = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(next_url if safe else reverse("home"))


def _report_scope(request) -> tuple[list, int | None]:
    """The offices the viewer may read and the one chosen (404 for one they may not)."""
    offices = list(metrics.report_offices(viewer=request.agent))
    office_param = request.GET.get("office", "")
    office_id = int(office_param) if office_param.isdecimal() else None
    if office_param and office_id not in {office.pk for office in offices}:
        raise Http404("No such office in your reports.")
    return offices, office_id


def _query_with(request, **params) -> str:
    """The page's own query string with `params` set (replaced, not appended)."""
    query = request.GET.copy()
    for name, value in params.items():
        query[name] = value
    return query.urlencode()


@agent_required
@require_GET
def dashboard(request):
    """Response time and recovery by office, agent, line, source or lead type, against the
    previous period of the same length; CSV of the same rows with `format=csv`."""
    viewer = request.agent
    offices, office_id = _report_scope(request)
    tz = viewer.office.tz
    period = metrics.ReportPeriod.from_params(request.GET, tz=tz)
    dimension = request.GET.get("by", "office")
    board = metrics.dashboard(viewer=viewer, start=period.start, end=period.end, dimension=dimension, office_id=office_id, tz=tz)
    if request.GET.get("format") == "csv":
        return fragments.dashboard_csv(board, period)
    length = period.end - period.start
    before = metrics.dashboard(
        viewer=viewer, start=period.start - length, end=period.start, dimension=board.dimension, office_id=office_id, tz=tz
    )
    t = board.total
    # Per week reads better than 90 points a line; either can be chosen.
    by_week = request.GET.get("trend", "week" if (period.end - period.start).days > 45 else "day") == "week"
    previous = {r.key: r for r in before.rows}
    trend = board.weeks if by_week else board.days
    ranked = metrics.leaderboard(board.rows) if board.dimension == "agent" else board.rows
    context = {
        "agent": viewer, "offices": offices, "office_id": office_id, "period": period, "board": board, "before": before.total,
        "period_choices": metrics.PERIOD_DAYS, "custom": metrics.CUSTOM, "dimensions": metrics.DIMENSIONS,
        "dimension_label": metrics.DIMENSIONS[board.dimension], "query": request.GET.urlencode(),
        "tiles": metrics.live_tiles(viewer=viewer), "socket_url": InboxState(screen="dashboard").socket_url,
        "rows": [(r, previous.get(r.key)) for r in ranked], "by_week": by_week,
        "trend_query": {choice: _query_with(request, trend=choice) for choice in ("day", "week")},
        "funnel": [
            ("missed", "Missed calls", t.missed_calls), ("texted", "Texted back", t.textbacks_sent),
            ("delivered", "Delivered", t.textbacks_delivered), ("replied", "Caller replied", t.replied),
            ("recovered", "Reached a human", t.recovered), ("appointment", "Appointment booked", t.appointments),
        ],
        "trend_chart": charts.trend_chart(
            series=[
                charts.Series("Missed calls", [(day, missed) for day, missed, _ in trend]),
                charts.Series("Recovered", [(day, recovered) for day, _, recovered in trend]),
            ],
            title="Missed calls and recovered, per week (from Monday)" if by_week else "Missed calls and recovered, per day",
        ),
        "response_chart": charts.distribution_chart(
            buckets=charts.response_time_buckets(t.response), title="How long callers waited for a human",
        ),
    }
    with timezone.override(tz):
        return render(request, "inbox/dashboard.html", context)


@agent_required
@require_GET
def dashboard_leads(request):
    """The leads behind one number of the dashboard, each a link to its thread."""
    viewer = request.agent
    _, office_id = _report_scope(request)
    drill = request.GET.get("show", "missed")
    if drill not in metrics.DRILL_DOWNS:
        raise Http404("No such list.")
    period = metrics.ReportPeriod.from_params(request.GET, tz=viewer.office.tz)
    lead_ids = metrics.dashboard_lead_ids(
        viewer=viewer, start=period.start, end=period.end, dimension=request.GET.get("by", "office"),
        key=request.GET.get("key", ""), drill=drill, office_id=office_id,
    )
    leads = selectors.leads_by_ids(lead_ids)
    back = request.GET.copy()
    for param in ("show", "key", "label"):
        back.pop(param, None)
    context = {
        "agent": viewer, "period": period, "leads": leads, "title": metrics.DRILL_DOWNS[drill],
        "label": request.GET.get("label", ""), "back_query": back.urlencode(),
    }
    with timezone.override(viewer.office.tz):
        return render(request, "inbox/dashboard_leads.html", context)


@agent_required
@require_GET
def fairness_report(request):
    """Team leaders and brokers only: the report names colleagues' numbers. An office the viewer
    may not read is a 404, as a lead they may not see is."""
    viewer = request.agent
    if viewer.role == Agent.Role.AGENT:
        raise PermissionDenied("The fairness report is for team leaders and brokers.")
    offices, office_id = _report_scope(request)
    tz = viewer.office.tz
    period = metrics.ReportPeriod.from_params(request.GET, tz=tz)
    report = metrics.fairness_report(viewer=viewer, start=period.start, end=period.end, office_id=office_id)
    context = {
        "agent": viewer, "offices": offices, "office_id": office_id, "period": period, "report": report,
        "period_choices": metrics.PERIOD_DAYS, "custom": metrics.CUSTOM, "tolerance": metrics.FAIRNESS_TOLERANCE_POINTS,
        "any_assignments": any(office.assignments for office in report),
    }
    with timezone.override(tz):
        return render(request, "inbox/fairness.html", context)
