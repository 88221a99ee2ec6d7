"""Reads about leads, their calls and their texts."""

from leads.models import Message
from routing.models import Agent, TrackingNumber


def simulator_lines() -> list[TrackingNumber]:
    """The lines a simulated caller can dial: the active ones, as Twilio would only route those."""
    return list(TrackingNumber.objects.filter(active=True).select_related("office").order_by("office__name", "number"))


def simulator_thread(*, phone: str, line: TrackingNumber) -> list[Message]:
    """What the caller's handset shows for one line: a phone keeps one thread per sender number."""
    return list(
        Message.objects.filter(lead__phone=phone, line=line).select_related("lead", "line").order_by("created_at", "id")
    )


def simulator_agent_names(*, phones: list[str]) -> dict[str, str]:
    """Agents by the phone a <Dial> rings, so the simulator can say who is being rung."""
    return dict(Agent.objects.filter(phone__in=phones).order_by("id").values_list("phone", "name"))
