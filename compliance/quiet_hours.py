"""When a text that is not a reply may reach a caller.

The law counts the *called party's* local time (47 CFR 64.1200(c)(1)), and all we know of where
a caller is comes from their number, so the window is placed in the number's time zone, never the
office's. Where an area code spans two zones we cannot tell which side the caller is on, so a text
goes only when it is lawful on both. Brokers may narrow the window, never widen it.
"""

import dataclasses
import datetime as dt
import zoneinfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

LEGAL_START = dt.time(8)
LEGAL_END = dt.time(21)
STRICT_STATE_END = dt.time(20)  # Florida and Oklahoma
STRICT_STATE_DAILY_CAP = 3  # non-reply messages per 24 h there

# Every area code in service or assigned (NANPA), overlays included: a new overlay's numbers are
# as Floridian as the old ones, and a miss here would let a text through at 8:30 pm.
FLORIDA_AREA_CODES = frozenset(
    "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954".split()
)
OKLAHOMA_AREA_CODES = frozenset("405 539 572 580 918".split())

_STATE_NAMES = {"FL": "Florida", "OK": "Oklahoma"}

# phonenumbers' data would put these Florida numbers an hour on the wrong side: 689 (the Orlando
# overlay, Eastern) is filed under Central, so texts would go until 9 pm there; 448 (the overlay
# of 850, which covers both sides of the panhandle) is filed under Eastern only, so texts would
# go from 7 am in Pensacola. 850 itself is mapped exchange by exchange and is right.
_ZONE_CORRECTIONS = {"689": ("America/New_York",), "448": ("America/Chicago", "America/New_York")}

# How far ahead to look before declaring that a number's zones never share an allowed minute:
# the gap between two zones' offsets changes with daylight saving, so it repeats within a year.
_SEARCH_LIMIT = dt.timedelta(days=370)


@dataclasses.dataclass(frozen=True)
class TextingHours:
    start: dt.time
    end: dt.time
    zones: tuple[zoneinfo.ZoneInfo, ...]
    state: str

    def describe(self) -> str:
        """Agents and auditors reading a deferral need the window and the zone the law was
        applied in, and why it closes early for Florida and Oklahoma numbers."""
        zones = " and ".join(zone.key for zone in self.zones)
        state = f" ({_STATE_NAMES[self.state]} number)" if self.state else ""
        return f"{_clock(self.start)}–{_clock(self.end)} in {zones}{state}"


def number_state(phone: str) -> str:
    """Florida and Oklahoma shorten the day and cap messages; the area code is the only hint we
    have of which state's law covers the caller."""
    number = _nanp_number(phone)
    area_code = str(number.national_number)[:3] if number else ""
    if area_code in FLORIDA_AREA_CODES:
        return "FL"
    if area_code in OKLAHOMA_AREA_CODES:
        return "OK"
    return ""


def caller_texting_hours(*, phone: str, office_start: dt.time, office_end: dt.time, fallback_tz: str) -> TextingHours:
    """The window is the law's, narrowed by the office's hours if the broker asked for less; when
    the number says nothing about where the caller is (fictional, toll-free, foreign or garbled),
    the office's own zone is the best guess left."""
    state = number_state(phone)
    law_end = STRICT_STATE_END if state else LEGAL_END
    start, end = max(LEGAL_START, office_start), min(law_end, office_end)
    if start >= end:
        raise ValueError(
            f"Office hours {office_start:%H:%M}–{office_end:%H:%M} leave no time inside the lawful "
            f"{_clock(LEGAL_START)}–{_clock(law_end)} window"
        )
    zones = tuple(zoneinfo.ZoneInfo(key) for key in _number_zones(phone) or (fallback_tz,))
    return TextingHours(start=start, end=end, zones=zones, state=state)


def quiet_until(*, hours: TextingHours, at: dt.datetime) -> dt.datetime | None:
    """A deferred text is rescheduled rather than dropped, so the caller gets it at the first
    minute it is lawful wherever they may be; jumping from one zone's next opening to the next
    finds that minute without stepping through the night, and stays right when clocks change."""
    if at.utcoffset() is None:
        raise ValueError("quiet_until needs an aware datetime: a naive one would be read in the server's zone")
    if _inside_everywhere(hours, at):
        return None
    candidate = _next_whole_minute(at)
    while not _inside_everywhere(hours, candidate):
        if candidate - at > _SEARCH_LIMIT:
            raise ValueError(f"No minute is inside {hours.describe()} in every zone at once")
        candidate = max(
            _next_opening(hours, zone, candidate) for zone in hours.zones if not _inside(hours, zone, candidate)
        )
    return candidate


def _nanp_number(phone: str) -> phonenumbers.PhoneNumber | None:
    """Area codes and the rules keyed on them exist only in the North American plan."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 1 or len(str(number.national_number)) != 10:
        return None
    return number


def _number_zones(phone: str) -> tuple[str, ...]:
    """Only a geographic number says where its owner is: for toll-free and personal (5XX) numbers
    phonenumbers lists every zone of the plan, and for invalid ones "Etc/Unknown"."""
    number = _nanp_number(phone)
    if number is None or not phonenumbers.is_number_geographical(number):
        return ()
    area_code = str(number.national_number)[:3]
    return _ZONE_CORRECTIONS.get(area_code) or phone_timezone.time_zones_for_geographical_number(number)


def _inside(hours: TextingHours, zone: zoneinfo.ZoneInfo, at: dt.datetime) -> bool:
    """The wall clock the caller sees is what the law counts, whatever daylight saving did to it."""
    return hours.start <= at.astimezone(zone).time() < hours.end


def _inside_everywhere(hours: TextingHours, at: dt.datetime) -> bool:
    return all(_inside(hours, zone, at) for zone in hours.zones)


def _next_opening(hours: TextingHours, zone: zoneinfo.ZoneInfo, after: dt.datetime) -> dt.datetime:
    """Only called while `zone` is closed, so its next opening is today's if the day has not
    started yet, else tomorrow's. A start time that spring-forward skips is read as after the
    jump: late, never early."""
    local = after.astimezone(zone)
    day = local.date() if local.time() < hours.start else local.date() + dt.timedelta(days=1)
    return _next_whole_minute(dt.datetime.combine(day, hours.start, tzinfo=zone))


def _next_whole_minute(at: dt.datetime) -> dt.datetime:
    """Schedules and the people reading them work in minutes; rounding up never lands early."""
    utc = at.astimezone(dt.UTC)
    whole = utc.replace(second=0, microsecond=0)
    return whole if whole == utc else whole + dt.timedelta(minutes=1)


def _clock(time: dt.time) -> str:
    return f"{time.hour % 12 or 12}:{time.minute:02d} {'am' if time.hour < 12 else 'pm'}"
