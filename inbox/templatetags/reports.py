"""How report numbers read: durations people say out loud, rates with their sign of change."""

from django import template

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
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


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
