"""Reads about lines and who can take a lead."""

from routing.models import Agent, Office, TrackingNumber

# Brokers manage; agents and team leaders take leads.
LEAD_TAKING_ROLES = [Agent.Role.AGENT, Agent.Role.TEAM_LEADER]


def line_by_number(*, number: str) -> TrackingNumber | None:
    return TrackingNumber.objects.select_related("office__brokerage").filter(number=number, active=True).first()


def line_for_inbound_text(*, number: str, messaging_service_sid: str = "") -> TrackingNumber | None:
    """The line a caller's text belongs to. Retired lines still own their consent records (a
    STOP to an old number must still be honoured), and a Messaging Service may deliver from a
    pooled number that is not itself a line."""
    lines = TrackingNumber.objects.select_related("office__brokerage")
    line = lines.filter(number=number).first()
    if line is None and messaging_service_sid:
        line = lines.filter(messaging_service_sid=messaging_service_sid).order_by("-active", "id").first()
    return line


def agent_available(agent: Agent | None) -> bool:
    """Can this agent take a lead now? (A later issue adds hours, capacity and pauses.)"""
    return agent is not None and agent.on_duty and agent.user.is_active


def agents_on_duty(*, office: Office) -> list[Agent]:
    return list(
        Agent.objects.filter(office=office, on_duty=True, role__in=LEAD_TAKING_ROLES, user__is_active=True).order_by("id")
    )


def agent_phone_is_known(*, phone: str) -> bool:
    """Is this one of the brokerage's own agents (answering an alert), not a caller?"""
    return Agent.objects.filter(phone=phone, user__is_active=True).exists()
