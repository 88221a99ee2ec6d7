"""How report numbers read: durations people say out loud, rates with their sign of change."""

import datetime as dt

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """1.5 s, 4 min, 1 h 20 min: the unit a manager would use for that size of wait."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:  # past two days nobody counts the minutes
        days, hours = divmod(hours + (minutes >= 30), 24)
        return f"{days} d {hours} h" if hours else f"{days} d"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def waited(since: dt.datetime | None) -> str:
    """How long since `since`, in the same units as the dashboard's other waits."""
    return "—" if since is None else duration(max((timezone.now() - since).total_seconds(), 0))


@register.filter
def count(value: int | None) -> str:
    """12,105: counts a brokerage reads at a glance."""
    return "—" if value is None else f"{value:,}"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:g} %"


@register.simple_tag
def change(now: float | None, before: float | None) -> str:
    """"▲ 12 % vs previous period", or "" when either side has no figure."""
    if now is None or before is None:
        return ""
    if now == before:
        return "same as previous period"
    if before == 0:
        return "none in the previous period"
    delta = (now - before) / before * 100
    return f"{'▲' if delta > 0 else '▼'} {abs(delta):.0f} % vs previous period"


@register.simple_tag
def points(now: float | None, before: float | None) -> str:
    """A rate's change in percentage points, "▲ 4.5 pts", "±0 pts", or "" when either side has no rate."""
    if now is None or before is None:
        return ""
    delta = round(now - before, 1)
    return "±0 pts" if delta == 0 else f"{'▲' if delta > 0 else '▼'} {abs(delta):g} pts"
