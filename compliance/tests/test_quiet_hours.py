import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import geocoder

from compliance.quiet_hours import (
    FLORIDA_AREA_CODES,
    LEGAL_END,
    LEGAL_START,
    OKLAHOMA_AREA_CODES,
    STRICT_STATE_END,
    caller_texting_hours,
    number_state,
    quiet_until,
)

NEW_YORK, MIAMI, TULSA, SAN_FRANCISCO = "+12125551234", "+13055551234", "+19185551234", "+14155551234"
PHOENIX, DENVER, HONOLULU = "+16025551234", "+17205551234", "+18085551234"
PENSACOLA, TALLAHASSEE = "+18504341234", "+18506441234"  # 850 is split by exchange
PANHANDLE_OVERLAY, ORLANDO_OVERLAY = "+14482345678", "+16892345678"  # 448 over 850, 689 over 407
IDAHO_SPLIT = "+12089876543"  # Boise (Mountain) and the panhandle (Pacific)
SOUTH_DAKOTA_SPLIT, NORTH_DAKOTA_SPLIT = "+16054945970", "+17018139466"  # Mountain and Central
NAVAJO_NATION = "+19282835678"  # Arizona, but the Navajo Nation keeps daylight saving
NEWFOUNDLAND_SPLIT, NEWFOUNDLAND_OVERLAY, ALASKA = "+17092345678", "+18792345678", "+19072345678"
FICTIONAL, UK_LANDLINE, UK_MOBILE, TOLL_FREE = "+15555551234", "+442071234567", "+447911123456", "+18002345678"

ALL_DAY = (dt.time(0), dt.time(23, 59, 59))


def hours_for(phone: str, office: tuple[dt.time, dt.time] = ALL_DAY, fallback_tz: str = "America/Chicago"):
    return caller_texting_hours(phone=phone, office_start=office[0], office_end=office[1], fallback_tz=fallback_tz)


def local(zone: str, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def zones(*keys: str) -> tuple[ZoneInfo, ...]:
    return tuple(ZoneInfo(key) for key in keys)


@pytest.mark.parametrize("area_code", sorted(FLORIDA_AREA_CODES))
def test_it_knows_every_florida_area_code(area_code):
    assert number_state(f"+1{area_code}5551234") == "FL"


@pytest.mark.parametrize("area_code", sorted(OKLAHOMA_AREA_CODES))
def test_it_knows_every_oklahoma_area_code(area_code):
    assert number_state(f"+1{area_code}5551234") == "OK"


@pytest.mark.parametrize(
    "phone",
    [NEW_YORK, SAN_FRANCISCO, FICTIONAL, TOLL_FREE, UK_LANDLINE, "+44305551234", "+1305", "3055551234", "garbage", ""],
)
def test_it_gives_no_strict_state_to_other_or_unreadable_numbers(phone):
    assert number_state(phone) == ""


def test_it_agrees_with_phonenumbers_on_which_area_codes_are_florida_and_oklahoma():
    """Catches a new overlay the day phonenumbers learns of it."""
    found = {"FL": set(), "OK": set()}
    for area_code in range(200, 1000):
        for exchange in ("234", "555", "777"):
            place = geocoder.description_for_number(phonenumbers.parse(f"+1{area_code}{exchange}4567"), "en")
            for state, name in (("FL", "Florida"), ("OK", "Oklahoma")):
                if place == name or place.endswith(f", {state}"):
                    found[state].add(str(area_code))
    assert found == {"FL": FLORIDA_AREA_CODES, "OK": OKLAHOMA_AREA_CODES}


@pytest.mark.parametrize(
    "phone, expected_zones, state",
    [
        (NEW_YORK, ["America/New_York"], ""),
        (MIAMI, ["America/New_York"], "FL"),
        (TULSA, ["America/Chicago"], "OK"),
        (SAN_FRANCISCO, ["America/Los_Angeles"], ""),
        (PHOENIX, ["America/Phoenix"], ""),
        (PENSACOLA, ["America/Chicago"], "FL"),
        (TALLAHASSEE, ["America/New_York"], "FL"),
        (ORLANDO_OVERLAY, ["America/New_York"], "FL"),  # phonenumbers says Chicago
        (PANHANDLE_OVERLAY, ["America/Chicago", "America/New_York"], "FL"),  # phonenumbers says New York only
        (IDAHO_SPLIT, ["America/Boise", "America/Los_Angeles"], ""),
        (SOUTH_DAKOTA_SPLIT, ["America/Denver", "America/North_Dakota/Center"], ""),
        (NORTH_DAKOTA_SPLIT, ["America/Denver", "America/North_Dakota/Center"], ""),
        (NAVAJO_NATION, ["America/Denver", "America/Phoenix"], ""),
        (NEWFOUNDLAND_SPLIT, ["America/Halifax", "America/St_Johns"], ""),
        (ALASKA, ["America/Adak", "America/Anchorage"], ""),
    ],
)
def test_it_places_the_caller_by_their_number_not_the_office(phone, expected_zones, state):
    hours = hours_for(phone, fallback_tz="Pacific/Honolulu")
    assert (hours.zones, hours.state) == (zones(*expected_zones), state)


@pytest.mark.parametrize(
    "phone", [FICTIONAL, "+15555550100", UK_LANDLINE, UK_MOBILE, TOLL_FREE, "+15002345678", "+1305", "garbage", ""]
)
def test_it_falls_back_to_the_office_zone_when_the_number_says_nothing_useful(phone):
    hours = hours_for(phone, fallback_tz="America/Denver")
    assert (hours.zones, hours.state, hours.start, hours.end) == (zones("America/Denver"), "", LEGAL_START, LEGAL_END)
    assert quiet_until(hours=hours, at=local("America/Denver", 2026, 6, 10, 7, 30)) == utc(2026, 6, 10, 14, 0)


@pytest.mark.parametrize(
    "phone, office, expected",
    [
        (NEW_YORK, (dt.time(9), dt.time(18)), (dt.time(9), dt.time(18))),
        (NEW_YORK, (dt.time(7), dt.time(23)), (LEGAL_START, LEGAL_END)),
        (NEW_YORK, ALL_DAY, (LEGAL_START, LEGAL_END)),
        (NEW_YORK, (dt.time(7, 30), dt.time(19, 15)), (LEGAL_START, dt.time(19, 15))),
        (MIAMI, (dt.time(9), dt.time(21)), (dt.time(9), STRICT_STATE_END)),
        (MIAMI, ALL_DAY, (LEGAL_START, STRICT_STATE_END)),
        (TULSA, (dt.time(7), dt.time(23)), (LEGAL_START, STRICT_STATE_END)),
        (TULSA, (dt.time(8, 45), dt.time(17, 30)), (dt.time(8, 45), dt.time(17, 30))),
        (FICTIONAL, (dt.time(10), dt.time(22)), (dt.time(10), LEGAL_END)),
    ],
)
def test_it_lets_brokers_narrow_the_window_but_never_widen_it(phone, office, expected):
    hours = hours_for(phone, office)
    assert (hours.start, hours.end) == expected


@pytest.mark.parametrize(
    "phone, office",
    [(NEW_YORK, (dt.time(21), dt.time(23))), (MIAMI, (dt.time(20), dt.time(22))), (NEW_YORK, (dt.time(5), dt.time(8)))],
)
def test_it_refuses_office_hours_that_leave_no_lawful_time(phone, office):
    with pytest.raises(ValueError, match="leave no time"):
        hours_for(phone, office)


@pytest.mark.parametrize(
    "phone, at, expected",
    [
        # Miami, Florida: 8 am to 8 pm Eastern
        (MIAMI, local("America/New_York", 2026, 6, 10, 19, 59), None),
        (MIAMI, local("America/New_York", 2026, 6, 10, 19, 59, 59, 999999), None),
        (MIAMI, local("America/New_York", 2026, 6, 10, 20, 0), utc(2026, 6, 11, 12, 0)),
        (MIAMI, local("America/New_York", 2026, 6, 10, 7, 59), utc(2026, 6, 10, 12, 0)),
        (MIAMI, local("America/New_York", 2026, 6, 10, 8, 0), None),
        # New York: 8 am to 9 pm Eastern
        (NEW_YORK, local("America/New_York", 2026, 6, 10, 20, 30), None),
        (NEW_YORK, local("America/New_York", 2026, 6, 10, 21, 0), utc(2026, 6, 11, 12, 0)),
        (NEW_YORK, local("America/New_York", 2026, 1, 14, 23, 45), utc(2026, 1, 15, 13, 0)),
        (NEW_YORK, local("America/New_York", 2026, 1, 15, 0, 15), utc(2026, 1, 15, 13, 0)),
        # Tulsa, Oklahoma: 8 am to 8 pm Central
        (TULSA, local("America/Chicago", 2026, 6, 10, 7, 59), utc(2026, 6, 10, 13, 0)),
        (TULSA, local("America/Chicago", 2026, 6, 10, 19, 59), None),
        (TULSA, local("America/Chicago", 2026, 6, 10, 20, 0), utc(2026, 6, 11, 13, 0)),
        (TULSA, local("America/New_York", 2026, 6, 10, 20, 30), None),  # 7:30 pm in Tulsa
        # San Francisco at 6:30 am, when it is 9:30 am in New York
        (SAN_FRANCISCO, local("America/New_York", 2026, 6, 10, 9, 30), utc(2026, 6, 10, 15, 0)),
        (SAN_FRANCISCO, local("America/New_York", 2026, 6, 10, 23, 30), None),  # 8:30 pm there
        (HONOLULU, local("America/New_York", 2026, 6, 10, 13, 0), utc(2026, 6, 10, 18, 0)),
        # The panhandle: Pensacola keeps Central time, Tallahassee Eastern
        (PENSACOLA, local("America/New_York", 2026, 6, 10, 20, 30), None),
        (TALLAHASSEE, local("America/New_York", 2026, 6, 10, 20, 30), utc(2026, 6, 11, 12, 0)),
        (ORLANDO_OVERLAY, local("America/New_York", 2026, 6, 10, 20, 30), utc(2026, 6, 11, 12, 0)),
        # 448 may be either side: 8 am Central to 8 pm Eastern
        (PANHANDLE_OVERLAY, local("America/New_York", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 13, 0)),
        (PANHANDLE_OVERLAY, local("America/New_York", 2026, 6, 10, 19, 59), None),
        (PANHANDLE_OVERLAY, local("America/New_York", 2026, 6, 10, 20, 0), utc(2026, 6, 11, 13, 0)),
    ],
)
def test_it_defers_texts_outside_the_callers_hours_to_the_next_allowed_minute(phone, at, expected):
    assert quiet_until(hours=hours_for(phone), at=at) == expected


@pytest.mark.parametrize(
    "phone, at, expected",
    [
        # Idaho: 8 am Pacific (9 am Mountain) to 9 pm Mountain (8 pm Pacific)
        (IDAHO_SPLIT, local("America/Los_Angeles", 2026, 6, 10, 7, 30), utc(2026, 6, 10, 15, 0)),
        (IDAHO_SPLIT, local("America/Denver", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 15, 0)),
        (IDAHO_SPLIT, local("America/Los_Angeles", 2026, 6, 10, 8, 0), None),
        (IDAHO_SPLIT, local("America/Boise", 2026, 6, 10, 20, 59), None),
        (IDAHO_SPLIT, local("America/Boise", 2026, 6, 10, 21, 0), utc(2026, 6, 11, 15, 0)),
        # The Dakotas: 8 am Mountain (9 am Central) to 9 pm Central (8 pm Mountain)
        (SOUTH_DAKOTA_SPLIT, local("America/Chicago", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 14, 0)),
        (NORTH_DAKOTA_SPLIT, local("America/Chicago", 2026, 6, 10, 21, 0), utc(2026, 6, 11, 14, 0)),
        (NORTH_DAKOTA_SPLIT, local("America/Denver", 2026, 6, 10, 19, 59), None),
        # Newfoundland's 709 may be in Halifax (half an hour behind St. John's)
        (NEWFOUNDLAND_SPLIT, local("America/St_Johns", 2026, 6, 10, 8, 15), utc(2026, 6, 10, 11, 0)),
        (NEWFOUNDLAND_SPLIT, local("America/St_Johns", 2026, 6, 10, 20, 59), None),
        (NEWFOUNDLAND_SPLIT, local("America/St_Johns", 2026, 6, 10, 21, 0), utc(2026, 6, 11, 11, 0)),
        # Alaska's 907 may be on Adak, an hour behind Anchorage
        (ALASKA, local("America/Anchorage", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 17, 0)),
        # The Navajo Nation is an hour ahead of the rest of Arizona in summer, level in winter
        (NAVAJO_NATION, local("America/Denver", 2026, 7, 1, 8, 30), utc(2026, 7, 1, 15, 0)),
        (NAVAJO_NATION, local("America/Denver", 2026, 7, 1, 21, 0), utc(2026, 7, 2, 15, 0)),
        (NAVAJO_NATION, local("America/Phoenix", 2026, 7, 1, 19, 59), None),
        (NAVAJO_NATION, local("America/Phoenix", 2026, 12, 1, 20, 30), None),
        (NAVAJO_NATION, local("America/Phoenix", 2026, 12, 1, 7, 30), utc(2026, 12, 1, 15, 0)),
    ],
)
def test_it_waits_until_a_split_area_code_is_open_on_both_sides(phone, at, expected):
    assert len(hours_for(phone).zones) == 2
    assert quiet_until(hours=hours_for(phone), at=at) == expected


@pytest.mark.parametrize(
    "phone, at, expected",
    [
        # Spring forward: Sunday 8 am is already daylight time
        (NEW_YORK, local("America/New_York", 2026, 3, 7, 21, 30), utc(2026, 3, 8, 12, 0)),
        (NEW_YORK, local("America/New_York", 2026, 3, 8, 1, 59), utc(2026, 3, 8, 12, 0)),
        (NEW_YORK, local("America/New_York", 2026, 3, 8, 3, 0), utc(2026, 3, 8, 12, 0)),
        (NEW_YORK, local("America/New_York", 2026, 3, 8, 20, 59), None),
        (NEW_YORK, local("America/New_York", 2026, 3, 8, 21, 0), utc(2026, 3, 9, 12, 0)),
        (DENVER, local("America/Denver", 2026, 3, 7, 21, 30), utc(2026, 3, 8, 14, 0)),
        (PHOENIX, local("America/Phoenix", 2026, 3, 7, 21, 30), utc(2026, 3, 8, 15, 0)),
        (NAVAJO_NATION, local("America/Denver", 2026, 3, 7, 21, 30), utc(2026, 3, 8, 15, 0)),
        (MIAMI, local("America/New_York", 2026, 3, 7, 20, 0), utc(2026, 3, 8, 12, 0)),
        # Fall back: Sunday 8 am is standard time again, an hour later in UTC
        (NEW_YORK, local("America/New_York", 2026, 10, 31, 21, 30), utc(2026, 11, 1, 13, 0)),
        (NEW_YORK, local("America/New_York", 2026, 11, 1, 1, 30, fold=0), utc(2026, 11, 1, 13, 0)),
        (NEW_YORK, local("America/New_York", 2026, 11, 1, 1, 30, fold=1), utc(2026, 11, 1, 13, 0)),
        (NEW_YORK, local("America/New_York", 2026, 11, 1, 20, 59), None),
        (NEW_YORK, local("America/New_York", 2026, 11, 1, 21, 0), utc(2026, 11, 2, 13, 0)),
        (DENVER, local("America/Denver", 2026, 10, 31, 21, 30), utc(2026, 11, 1, 15, 0)),
        (PHOENIX, local("America/Phoenix", 2026, 10, 31, 21, 30), utc(2026, 11, 1, 15, 0)),
        (NAVAJO_NATION, local("America/Denver", 2026, 10, 31, 21, 30), utc(2026, 11, 1, 15, 0)),
        (TULSA, local("America/Chicago", 2026, 10, 31, 20, 0), utc(2026, 11, 1, 14, 0)),
    ],
)
def test_it_reopens_at_8_am_local_when_the_clocks_change(phone, at, expected):
    assert quiet_until(hours=hours_for(phone), at=at) == expected


@pytest.mark.parametrize(
    "phone, at, expected",
    [
        (NEW_YORK, local("America/New_York", 2026, 12, 31, 22, 0), utc(2027, 1, 1, 13, 0)),
        (SAN_FRANCISCO, local("America/Los_Angeles", 2027, 12, 31, 23, 59), utc(2028, 1, 1, 16, 0)),
        (NEW_YORK, local("America/New_York", 2026, 4, 30, 21, 0), utc(2026, 5, 1, 12, 0)),
        (MIAMI, local("America/New_York", 2028, 2, 28, 20, 0), utc(2028, 2, 29, 13, 0)),
        (HONOLULU, utc(2027, 1, 1, 8, 0), utc(2027, 1, 1, 18, 0)),  # 10 pm on New Year’s Eve there
    ],
)
def test_it_carries_over_month_and_year_ends(phone, at, expected):
    assert quiet_until(hours=hours_for(phone), at=at) == expected


@pytest.mark.parametrize(
    "office, at, expected",
    [
        ((dt.time(9), dt.time(18)), local("America/New_York", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 13, 0)),
        ((dt.time(9), dt.time(18)), local("America/New_York", 2026, 6, 10, 17, 59), None),
        ((dt.time(9), dt.time(18)), local("America/New_York", 2026, 6, 10, 18, 0), utc(2026, 6, 11, 13, 0)),
        ((dt.time(9, 0, 30), dt.time(18)), local("America/New_York", 2026, 6, 10, 8, 30), utc(2026, 6, 10, 13, 1)),
        ((dt.time(7), dt.time(23)), local("America/New_York", 2026, 6, 10, 7, 30), utc(2026, 6, 10, 12, 0)),
        ((dt.time(7), dt.time(23)), local("America/New_York", 2026, 6, 10, 22, 0), utc(2026, 6, 11, 12, 0)),
    ],
)
def test_it_defers_to_the_offices_narrower_window(office, at, expected):
    assert quiet_until(hours=hours_for(NEW_YORK, office), at=at) == expected


@pytest.mark.parametrize(
    "at",
    [
        local("America/New_York", 2026, 6, 10, 7, 59, 30, 500000),
        local("America/New_York", 2026, 6, 10, 21, 0, 0, 1),
        local("Asia/Tokyo", 2026, 6, 11, 10, 0),
        utc(2026, 6, 10, 11, 0),
    ],
)
def test_it_answers_in_utc_on_a_whole_minute(at):
    until = quiet_until(hours=hours_for(NEW_YORK), at=at)
    assert until.tzinfo is dt.UTC and until.second == until.microsecond == 0 and until >= at


def test_it_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="aware"):
        quiet_until(hours=hours_for(NEW_YORK), at=dt.datetime(2026, 6, 10, 12, 0))


def test_it_refuses_a_window_narrower_than_the_gap_between_a_numbers_zones():
    hours = hours_for(IDAHO_SPLIT, (dt.time(9), dt.time(9, 30)))
    with pytest.raises(ValueError, match="in every zone"):
        quiet_until(hours=hours, at=local("America/Boise", 2026, 6, 10, 12, 0))


def test_it_finds_the_season_when_a_short_window_overlaps_again():
    # 879 may be in Puerto Rico (no daylight saving) or St. John's: 1½ hours apart in summer,
    # ½ hour in winter, so a one-hour window only opens on both sides once the clocks go back.
    hours = hours_for(NEWFOUNDLAND_OVERLAY, (dt.time(9), dt.time(10)))
    assert quiet_until(hours=hours, at=local("America/Puerto_Rico", 2026, 7, 1, 12, 0)) == utc(2026, 11, 1, 13, 0)


@pytest.mark.parametrize(
    "phone, office, description",
    [
        (MIAMI, ALL_DAY, "8:00 am–8:00 pm in America/New_York (Florida number)"),
        (TULSA, (dt.time(9, 30), dt.time(17)), "9:30 am–5:00 pm in America/Chicago (Oklahoma number)"),
        (NEW_YORK, (dt.time(12), dt.time(23)), "12:00 pm–9:00 pm in America/New_York"),
        (IDAHO_SPLIT, ALL_DAY, "8:00 am–9:00 pm in America/Boise and America/Los_Angeles"),
        (FICTIONAL, ALL_DAY, "8:00 am–9:00 pm in America/Chicago"),
    ],
)
def test_it_describes_the_window_for_people(phone, office, description):
    assert hours_for(phone, office).describe() == description


PROPERTY_PHONES = [
    NEW_YORK, MIAMI, TULSA, SAN_FRANCISCO, PHOENIX, DENVER, HONOLULU, PENSACOLA, TALLAHASSEE, PANHANDLE_OVERLAY,
    ORLANDO_OVERLAY, IDAHO_SPLIT, SOUTH_DAKOTA_SPLIT, NORTH_DAKOTA_SPLIT, NAVAJO_NATION, NEWFOUNDLAND_SPLIT,
    NEWFOUNDLAND_OVERLAY, ALASKA, FICTIONAL, UK_LANDLINE, TOLL_FREE,
]
OFFICE_ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles", "Pacific/Honolulu",
]
US_CLOCK_CHANGES = [
    utc(2026, 3, 8, 12), utc(2026, 11, 1, 12), utc(2027, 3, 14, 12),
    utc(2027, 11, 7, 12), utc(2028, 3, 12, 12), utc(2028, 11, 5, 12),
]
instants = st.one_of(
    st.datetimes(
        min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2028, 12, 31, 23, 59, 59),
        timezones=st.sampled_from([dt.UTC, *map(ZoneInfo, OFFICE_ZONES)]),
    ),
    st.builds(
        lambda change, minutes: change + dt.timedelta(minutes=minutes),
        st.sampled_from(US_CLOCK_CHANGES), st.integers(-36 * 60, 36 * 60),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    at=instants,
    phone=st.sampled_from(PROPERTY_PHONES),
    office_start=st.times(min_value=dt.time(5), max_value=dt.time(11, 59, 59)),
    office_end=st.times(min_value=dt.time(15), max_value=dt.time(23, 59, 59)),
    fallback_tz=st.sampled_from(OFFICE_ZONES),
)
def test_it_defers_exactly_until_the_first_minute_allowed_in_every_zone(at, phone, office_start, office_end, fallback_tz):
    hours = caller_texting_hours(phone=phone, office_start=office_start, office_end=office_end, fallback_tz=fallback_tz)
    assert hours.start == max(LEGAL_START, office_start)
    assert hours.end == min(STRICT_STATE_END if number_state(phone) else LEGAL_END, office_end)

    def allowed(moment: dt.datetime) -> bool:
        return all(hours.start <= moment.astimezone(zone).time() < hours.end for zone in hours.zones)

    until = quiet_until(hours=hours, at=at)
    assert (until is None) == allowed(at)
    if until is None:
        return
    assert until >= at and allowed(until)
    assert until.tzinfo is dt.UTC and until.second == until.microsecond == 0
    minute = until - dt.timedelta(minutes=1)
    assert minute < at or not allowed(minute)
    while minute >= at:  # every whole minute in between, back to `at`
        assert not allowed(minute)
        minute -= dt.timedelta(minutes=1)
