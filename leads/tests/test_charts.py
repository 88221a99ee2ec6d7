"""The dashboard charts as a browser and a screen reader get them: parsed SVG, not string matching."""

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from leads.charts import (
    NO_DATA, RESPONSE_TIME_BUCKETS, Series, distribution_chart, nice_ticks, response_time_buckets, trend_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
NOV_3 = dt.date(2026, 11, 3)


def days(*values):
    return [(NOV_3 + dt.timedelta(days=i), v) for i, v in enumerate(values)]


def parse(chart) -> ET.Element:
    return ET.fromstring(str(chart))


def find(root, tag, cls=None):
    return [e for e in root.iter(SVG + tag) if cls is None or cls in e.get("class", "").split()]


def texts(root, cls):
    return [e.text for e in find(root, "text", cls)]


def paths(root):
    return [e.get("d") for e in find(root, "path")]


@pytest.mark.parametrize(("maximum", "ticks"), [
    (37, [0, 10, 20, 30, 40]),
    (40, [0, 10, 20, 30, 40]),
    (1234, [0, 500, 1000, 1500]),
    (1, [0, 0.25, 0.5, 0.75, 1]),
    (0.7, [0, 0.2, 0.4, 0.6, 0.8]),
    (100, [0, 25, 50, 75, 100]),
    (0, [0, 1]),
    (-3, [0, 1]),
])
def test_it_picks_round_ticks_from_zero_covering_the_maximum(maximum, ticks):
    assert nice_ticks(maximum) == ticks


@pytest.mark.parametrize(("maximum", "ticks"), [(1, [0, 1]), (2, [0, 1, 2]), (10, [0, 5, 10]), (37, [0, 10, 20, 30, 40])])
def test_it_never_gives_counts_a_fractional_tick(maximum, ticks):
    assert nice_ticks(maximum, integer=True) == ticks


def test_it_draws_a_circle_with_a_tooltip_per_point_and_an_accessible_name():
    root = parse(trend_chart(series=[Series("Missed calls", days(12, 3, 7))], title="Missed calls per day"))
    assert root.get("role") == "img" and root.get("width") == "100%" and root.get("viewBox") == "0 0 640 220"
    title, desc = root.find(SVG + "title"), root.find(SVG + "desc")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Missed calls per day" and "highest 12 on Nov 3" in desc.text
    assert [c.find(SVG + "title").text for c in find(root, "circle")] == [
        "Nov 3: 12 missed calls", "Nov 4: 3 missed calls", "Nov 5: 7 missed calls",
    ]
    (legend,) = find(root, "g", "chart-legend")
    assert legend.find(SVG + "text").text == "Missed calls"


def test_it_labels_the_y_axis_with_round_ticks_from_zero_in_the_series_unit():
    root = parse(trend_chart(series=[Series("Recovery rate", days(37, 12.5), unit="%")], title="Recovered"))
    assert [t for t in texts(root, "chart-axis") if t.endswith("%")] == ["0%", "10%", "20%", "30%", "40%"]
    assert find(root, "circle")[1].find(SVG + "title").text == "Nov 4: 12.5% recovery rate"


def test_a_points_height_is_proportional_and_the_top_value_touches_the_top_tick():
    root = parse(trend_chart(series=[Series("Missed calls", days(40, 20, 0))], title="Missed"))
    grid = {float(line.get("y1")) for line in find(root, "line", "chart-grid")}
    top, baseline = min(grid), max(grid)
    ys = [float(c.get("cy")) for c in find(root, "circle")]
    assert ys[0] == top and ys[2] == baseline
    assert ys[1] == pytest.approx((top + baseline) / 2, abs=0.1)


def test_it_leaves_a_gap_for_a_day_without_data():
    root = parse(trend_chart(series=[Series("Missed calls", days(5, None, 7, 8))], title="Missed"))
    assert len(find(root, "circle")) == 3
    (line,) = paths(root)
    assert line.count("M") == 2 and line.count("L") == 1  # 5 stands alone; 7 joins 8
    assert "1 without data" in root.find(SVG + "desc").text


def test_it_tells_series_apart_by_dash_as_well_as_colour():
    series = [Series(label, days(1, 2, 3)) for label in ("Missed calls", "Recovered", "Booked")]
    root = parse(trend_chart(series=series, title="Three"))
    lines = find(root, "path")
    assert len({p.get("stroke") for p in lines}) == 3 and len({p.get("stroke-dasharray") for p in lines}) == 3
    assert len(find(root, "circle")) == 9
    with pytest.raises(ValueError):
        trend_chart(series=[*series, Series("Fourth", days(1))], title="Four")
    with pytest.raises(ValueError):
        trend_chart(series=[Series("Rate", days(1), "%"), Series("Wait", days(1), "min")], title="Mixed")


def test_it_labels_a_readable_number_of_dates_always_including_the_latest():
    points = [(dt.date(2026, 9, 1) + dt.timedelta(days=i), i % 7) for i in range(90)]
    root = parse(trend_chart(series=[Series("Missed calls", points)], title="Quarter"))
    dates = [t for t in texts(root, "chart-axis") if not t.isdigit()]
    assert 3 <= len(dates) <= 8 and dates[-1] == "Nov 29"
    minor = [e.text for e in find(root, "text", "chart-x-minor")]
    assert "Nov 29" not in minor and len(minor) == len(dates) // 2  # what phones hide
    assert len(find(root, "circle")) == 90


def test_a_single_day_is_a_single_centred_point():
    root = parse(trend_chart(series=[Series("Missed calls", days(4))], title="Monday"))
    (circle,) = find(root, "circle")
    assert float(circle.get("cx")) > 200 and "Nov 3" in texts(root, "chart-axis")


@pytest.mark.parametrize("series", [[], [Series("Missed calls", [])], [Series("Missed calls", days(None, None))]])
def test_no_data_says_so_instead_of_drawing_zeros(series):
    root = parse(trend_chart(series=series, title="Missed calls per day"))
    assert root.get("role") == "img" and root.find(SVG + "title").text == "Missed calls per day"
    assert texts(root, "chart-empty") == [NO_DATA] and not find(root, "circle") and not find(root, "path")


def test_it_escapes_every_label():
    chart = trend_chart(series=[Series("<script>alert(1)</script>", days(1, 2))], title="<b>Ann & Bob</b>")
    assert "<script>" not in chart and "<b>" not in chart
    root = parse(chart)
    assert root.find(SVG + "title").text == "<b>Ann & Bob</b>"
    assert "<script>alert(1)</script>" in [e.text for e in find(root, "text")]
    dist = distribution_chart(buckets=[("<script>", 2), ("ok", 1)], title="<i>x</i>", highlight="<script>")
    assert "<script>" not in dist and [t for t in texts(parse(dist), "chart-bucket")] == ["<script>", "ok"]


def test_it_draws_a_bar_per_bucket_with_its_count_on_top():
    buckets = [("<1 min", 4), ("1–5 min", 8), ("5–15 min", 0)]
    root = parse(distribution_chart(buckets=buckets, title="Waits", highlight="1–5 min"))
    bars = find(root, "rect", "chart-bar")
    assert len(bars) == 3 and texts(root, "chart-count") == ["4", "8", "0"]
    assert texts(root, "chart-bucket") == ["<1 min", "1–5 min", "5–15 min"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(heights[1] / 2) and heights[2] == 0
    assert [g.find(SVG + "title").text for g in find(root, "g", "chart-bar-group")][1] == "1–5 min: 8 of 12 (67%)"
    (highlighted,) = find(root, "g", "chart-highlight")
    assert highlighted.find(SVG + "rect").get("fill") != bars[0].get("fill")
    assert root.find(SVG + "desc").text == "12 in all. <1 min: 4; 1–5 min: 8; 5–15 min: 0. Highlighted: 1–5 min."


def test_a_distribution_of_nothing_says_so_and_an_unknown_highlight_is_a_mistake():
    root = parse(distribution_chart(buckets=response_time_buckets([]), title="Waits"))
    assert texts(root, "chart-empty") == [NO_DATA] and not find(root, "rect")
    with pytest.raises(ValueError):
        distribution_chart(buckets=[("a", 1)], title="Waits", highlight="b")


def test_response_times_fall_in_the_standard_buckets_at_their_lower_bounds():
    assert response_time_buckets([]) == [(label, 0) for label in RESPONSE_TIME_BUCKETS]
    edges = [0, 59.9, 60, 299.9, 300, 899, 900, 3599, 3600, 14399, 14400, 86400]
    assert response_time_buckets(edges) == [
        ("<1 min", 2), ("1–5 min", 2), ("5–15 min", 2), ("15–60 min", 2), ("1–4 h", 2), (">4 h", 2),
    ]
    assert response_time_buckets(iter([60]))[1] == ("1–5 min", 1)  # any iterable, e.g. a generator
