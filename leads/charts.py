"""Server-rendered SVG charts for the dashboards: no JavaScript, no CDN, no chart library.

Team leaders glance at these on a laptop or a phone, so each chart is one `<svg>` scaled by its
viewBox to the container, carries its own `<title>`/`<desc>` for screen readers, and never relies
on colour alone (every series also has its own dash pattern). All text goes through `format_html`,
because series and bucket labels can be office or agent names typed in by brokers.

The layout reserves room for the larger type `static/css/app.css` switches to on phones
(`PHONE_FONT`), where the whole chart is drawn at about half size.
"""

import bisect
import dataclasses
import datetime
import math
import uuid
from collections.abc import Iterable, Sequence

from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

FONT = 13  # axis and legend text, in viewBox units
TITLE_FONT = 15
PHONE_FONT = 20  # what the stylesheet uses below 600px; text widths are estimated at this size
PAD = 12
INK, MUTED, GRID = "#18212c", "#5a6675", "#d9dee5"

# Colour, dash pattern: distinct in colour, in grey and for the common colour blindnesses.
SERIES_STYLES = (("#0b6b66", ""), ("#c2410c", "10 6"), ("#6d28d9", "1 6"))

RESPONSE_TIME_BUCKETS = ("<1 min", "1–5 min", "5–15 min", "15–60 min", "1–4 h", ">4 h")
_RESPONSE_TIME_LIMITS = (60, 5 * 60, 15 * 60, 60 * 60, 4 * 60 * 60)  # seconds; each bucket's lower bound after the first

NO_DATA = "No data for this period"


@dataclasses.dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[datetime.date, float | None]]  # one per day or week, in order; None = no data
    unit: str = ""  # "", "%", "min", "s"


def nice_ticks(maximum: float, count: int = 4, *, integer: bool = False) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 × 10^n) up to the first tick at or above `maximum`.

    At most `count` steps, so the axis keeps 3–5 labels a reader can add up in their head.
    `integer` is for counts: nobody has half a missed call, so steps are whole numbers.
    Nothing to cover (0, negative, NaN) still gets an axis one unit tall.
    """
    if not maximum > 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = [m * magnitude for m in (1, 2, 2.5, 5, 10)]
    if integer:
        steps = [s for s in steps if s >= 1 and float(s).is_integer()] or [1.0]
    step = next((s for s in steps if s >= raw * (1 - 1e-9)), steps[-1])
    return [round(i * step, 10) for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def response_time_buckets(seconds: Iterable[float]) -> list[tuple[str, int]]:
    """Counts per `RESPONSE_TIME_BUCKETS`, all six always, so charts of two periods line up.

    A bucket holds its lower bound: exactly 60 s is "1–5 min", because "under a minute" is a promise.
    """
    counts = [0] * len(RESPONSE_TIME_BUCKETS)
    for value in seconds:
        counts[bisect.bisect_right(_RESPONSE_TIME_LIMITS, value)] += 1
    return list(zip(RESPONSE_TIME_BUCKETS, counts))


def trend_chart(*, series: list[Series], title: str, width: int = 640, height: int = 220) -> SafeString:
    """A line chart of 1–3 series sharing one y axis from 0; None leaves a gap, not a dip to zero."""
    if len(series) > len(SERIES_STYLES):
        raise ValueError(f"trend_chart draws at most {len(SERIES_STYLES)} series, got {len(series)}")
    if len({s.unit for s in series}) > 1:
        raise ValueError("trend_chart series share one y axis, so they must share one unit")
    values = [v for s in series for _, v in s.points if v is not None]
    if not values:
        return _no_data(title=title, width=width)
    unit = series[0].unit
    ticks = nice_ticks(max(values), integer=all(float(v).is_integer() for v in values))
    dates = [day for day, _ in max(series, key=lambda s: len(s.points)).points]

    tick_labels = [_value(t, unit) for t in ticks]
    left = PAD + max(_text_width(t) for t in tick_labels) + 8
    right, top, bottom = width - PAD, 70, height - 30
    inset = 6  # keeps the first and last point's circle inside the plot
    span = max(len(dates) - 1, 1)

    def x(i: int) -> float:
        if len(dates) == 1:
            return (left + right) / 2
        return left + inset + i * (right - left - 2 * inset) / span

    def y(v: float) -> float:
        return bottom - v / ticks[-1] * (bottom - top)

    parts = [_heading(title)]
    for tick, label in zip(ticks, tick_labels):
        parts.append(format_html(
            '<line class="chart-grid{}" x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>'
            '<text class="chart-axis" x="{}" y="{}" text-anchor="end" dominant-baseline="middle" font-size="{}" fill="{}">{}</text>',
            " chart-baseline" if tick == 0 else "", _n(left), _n(right), _n(y(tick)), _n(y(tick)),
            MUTED if tick == 0 else GRID, _n(left - 6), _n(y(tick)), FONT, MUTED, label,
        ))
    labelled = _labelled_indices(len(dates), max_labels=max(2, int((right - left) // 90)))
    for rank, i in enumerate(labelled):
        anchor = "middle" if len(dates) == 1 else "start" if i == 0 else "end" if i == len(dates) - 1 else "middle"
        parts.append(format_html(
            '<text class="chart-axis{}" x="{}" y="{}" text-anchor="{}" font-size="{}" fill="{}">{}</text>',
            " chart-x-minor" if (len(labelled) - 1 - rank) % 2 else "", _n(x(i)), _n(height - 10), anchor, FONT, MUTED, _day(dates[i]),
        ))

    legend_x = PAD
    radius = min(4.0, max(2.0, (right - left) / span / 4))
    for s, (colour, dash) in zip(series, SERIES_STYLES):
        parts.append(format_html(
            '<g class="chart-legend"><line x1="{}" x2="{}" y1="42" y2="42" stroke="{}" stroke-width="3" stroke-dasharray="{}" stroke-linecap="round"/>'
            '<text x="{}" y="42" dominant-baseline="middle" font-size="{}" fill="{}">{}</text></g>',
            _n(legend_x), _n(legend_x + 26), colour, dash or "none", _n(legend_x + 34), FONT, INK, s.label,
        ))
        legend_x += 34 + _text_width(s.label) + 20
        parts.append(_line(s, x, y, colour, dash, radius))
    return _svg(title=title, desc=_trend_desc(series), width=width, height=height, body=_join(parts))


def distribution_chart(
    *, buckets: list[tuple[str, int]], title: str, highlight: str | None = None, width: int = 640, height: int = 200
) -> SafeString:
    """Bars per bucket with their counts written on top, so nobody has to read an axis."""
    if highlight is not None and highlight not in {label for label, _ in buckets}:
        raise ValueError(f"highlight {highlight!r} is not one of the buckets")
    total = sum(count for _, count in buckets)
    if not total:
        return _no_data(title=title, width=width)
    top, bottom = 60, height - 30
    slot = (width - 2 * PAD) / len(buckets)
    bar = min(slot * 0.64, 96)
    tallest = max(count for _, count in buckets)

    parts = [_heading(title)]
    for i, (label, count) in enumerate(buckets):
        centre = PAD + slot * (i + 0.5)
        bar_height = count / tallest * (bottom - top)
        emphasis = " chart-highlight" if label == highlight else ""
        fill = "#08534f" if label == highlight else "#8cc3bd" if highlight else "#0b6b66"
        weight = "700" if label == highlight else "400"
        parts.append(format_html(
            '<g class="chart-bar-group{}"><title>{}: {} of {} ({})</title>'
            '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}"/>'
            '<text class="chart-count" x="{}" y="{}" text-anchor="middle" font-size="{}" font-weight="{}" fill="{}">{}</text>'
            '<text class="chart-axis chart-bucket" x="{}" y="{}" text-anchor="middle" font-size="{}" font-weight="{}" fill="{}">{}</text></g>',
            emphasis, label, f"{count:,}", f"{total:,}", f"{count / total:.0%}",
            _n(centre - bar / 2), _n(bottom - bar_height), _n(bar), _n(bar_height), fill,
            _n(centre), _n(bottom - bar_height - 6), FONT, weight, INK, f"{count:,}",
            _n(centre), _n(height - 10), FONT, weight, INK if highlight == label else MUTED, label,
        ))
    parts.append(format_html(
        '<line class="chart-grid chart-baseline" x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>',
        PAD, _n(width - PAD), _n(bottom), _n(bottom), MUTED,
    ))
    desc = format_html(
        "{} in all. {}.{}",
        f"{total:,}",
        "; ".join(f"{label}: {count:,}" for label, count in buckets),
        f" Highlighted: {highlight}." if highlight else "",
    )
    return _svg(title=title, desc=desc, width=width, height=height, body=_join(parts))


# --- pieces ---------------------------------------------------------------------------------------


def _svg(*, title: str, desc: str, width: int, height: int, body: SafeString) -> SafeString:
    """The accessible frame every chart shares: role="img" named by its own title and description."""
    uid = f"chart-{uuid.uuid4().hex[:8]}"
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {} {}" width="100%" '
        'role="img" aria-labelledby="{}-title {}-desc" font-family="system-ui, sans-serif">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        width, height, uid, uid, uid, title, uid, desc, body,
    )


def _no_data(*, title: str, width: int) -> SafeString:
    """A short card rather than an empty grid, which would read as "zero" instead of "unknown"."""
    height = 96
    body = format_html(
        '{}<text class="chart-empty" x="{}" y="{}" text-anchor="middle" font-size="{}" fill="{}">{}</text>',
        _heading(title), _n(width / 2), 64, FONT + 1, MUTED, NO_DATA,
    )
    return _svg(title=title, desc=NO_DATA, width=width, height=height, body=body)


def _heading(title: str) -> SafeString:
    return format_html(
        '<text class="chart-title" x="{}" y="22" font-size="{}" font-weight="600" fill="{}">{}</text>',
        PAD, TITLE_FONT, INK, title,
    )


def _line(series: Series, x, y, colour: str, dash: str, radius: float) -> SafeString:
    """One path per run of known points (a new "M" after every gap), and a circle per point."""
    commands, circles, pen_down = [], [], False
    for i, (day, value) in enumerate(series.points):
        if value is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{_n(x(i))} {_n(y(value))}")
        pen_down = True
        circles.append(format_html(
            '<circle class="chart-point" cx="{}" cy="{}" r="{}" fill="{}" stroke="#fff" stroke-width="1">'
            "<title>{}: {} {}</title></circle>",
            _n(x(i)), _n(y(value)), _n(radius), colour, _day(day), _value(value, series.unit), _mid_sentence(series.label),
        ))
    return format_html(
        '<g class="chart-series"><path d="{}" fill="none" stroke="{}" stroke-width="2.5" stroke-dasharray="{}" '
        'stroke-linecap="round" stroke-linejoin="round"/>{}</g>',
        " ".join(commands), colour, dash or "none", _join(circles),
    )


def _trend_desc(series: list[Series]) -> str:
    """What a sighted reader takes from the lines: the range, the peak and where it ended."""
    sentences = []
    for s in series:
        known = [(day, v) for day, v in s.points if v is not None]
        if not known:
            sentences.append(f"{s.label}: no data.")
            continue
        peak_day, peak = max(known, key=lambda p: p[1])
        last_day, last = known[-1]
        sentences.append(
            f"{s.label}, {_day(s.points[0][0])} to {_day(s.points[-1][0])}: highest {_value(peak, s.unit)} on {_day(peak_day)}, "
            f"latest {_value(last, s.unit)} on {_day(last_day)}"
            + (f", {len(s.points) - len(known)} without data." if len(known) < len(s.points) else ".")
        )
    return " ".join(sentences)


def _labelled_indices(n: int, *, max_labels: int) -> list[int]:
    """Every k-th date counted back from the latest, because the latest day is the one people ask about.

    Phones hide every other one of these (`chart-x-minor`), as their type is relatively larger."""
    step = max(1, math.ceil(n / max_labels))
    return sorted(range(n - 1, -1, -step))


def _day(day: datetime.date) -> str:
    return date_format(day, "M j")


def _value(value: float, unit: str) -> str:
    """Numbers as people say them: 12, 4.5, 1,234; more decimals only where they matter."""
    decimals = 0 if float(value).is_integer() or abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%" if unit == "%" else f"{text} {unit}" if unit else text


def _mid_sentence(label: str) -> str:
    """"Missed calls" reads "12 missed calls" in a tooltip; acronyms such as "SMS sent" keep their case."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _text_width(text: str) -> float:
    return len(text) * PHONE_FONT * 0.6


def _n(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


def _join(parts: Sequence[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))
