"""How report numbers read (inbox/templatetags/reports.py): the unit a manager would say out loud."""

import datetime as dt

import pytest

from inbox.templatetags.reports import change, count, duration, percent, points, waited


@pytest.mark.parametrize("seconds,reads", [
    (None, "—"), (0.447, "0.4 s"), (9.96, "10.0 s"), (42, "42 s"), (60, "1 min"), (29 * 60 + 29, "29 min"),
    (3600, "1 h"), (80 * 60, "1 h 20 min"), (47 * 3600 + 59 * 60, "47 h 59 min"), (48 * 3600, "2 d"),
    (247 * 3600 + 26 * 60, "10 d 7 h"), (71 * 3600 + 30 * 60, "3 d"),
])
def test_a_duration_reads_in_the_unit_of_its_size(seconds, reads):
    assert duration(seconds) == reads


def test_a_wait_reads_like_the_other_waits():
    from django.utils import timezone

    assert waited(timezone.now() - dt.timedelta(hours=12, minutes=19, seconds=5)) == "12 h 19 min" and waited(None) == "—"


def test_counts_rates_and_changes_read_at_a_glance():
    assert (count(12105), count(0), count(None)) == ("12,105", "0", "—")
    assert (percent(54.7), percent(None)) == ("54.7 %", "—")
    assert change(110, 100) == "▲ 10 % vs previous period" and change(5, 0) == "none in the previous period"
    assert (points(54.7, 50.2), points(0.0, 60.0), points(60.0, 60.0), points(None, 60.0)) == ("▲ 4.5 pts", "▼ 60 pts", "±0 pts", "")
