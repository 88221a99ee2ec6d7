"""The gate's rules, one at a time, with the time and the caller's history given explicitly."""

import datetime as dt

import pytest

from compliance.gate import ContactHistory, Purpose, Rule, TextingPolicy, Verdict, gate_check
from compliance.keywords import Keyword, keyword_classify
from compliance.models import AppendOnlyError, ConsentEvent, DoNotCallNumber, NumberProfile
from compliance.services import consent_record

pytestmark = pytest.mark.django_db

NEW_YORK, MIAMI, TULSA, SAN_FRANCISCO = "+12124561234", "+13054561234", "+19184561234", "+14154561234"
PHONE, LINE, OTHER_LINE = NEW_YORK, "+15555550100", "+15555550110"
EASTERN = dt.timezone(dt.timedelta(hours=-5))  # New York in November
NOON = dt.datetime(2026, 11, 24, 12, 0, tzinfo=EASTERN)
JUST_CALLED = ContactHistory(last_inbound_at=NOON - dt.timedelta(minutes=2))
QUIET = ContactHistory(last_inbound_at=NOON - dt.timedelta(days=2))  # an agent reaching out


def ask(purpose=Purpose.REPLY, *, phone=PHONE, sender=LINE, at=NOON, history=QUIET, policy=TextingPolicy(), consent_event_id=None):
    return gate_check(
        phone=phone, senders=(sender,), purpose=purpose, at=at, policy=policy, history=history, consent_event_id=consent_event_id
    )


def record(kind: str, *, phone=PHONE, sender: str = LINE, source: str = "keyword", ref: str = "") -> ConsentEvent:
    event, _ = consent_record(phone=phone, sender=sender, kind=kind, source=source, source_ref=ref)
    return event


def test_it_allows_a_number_with_no_history():
    decision = ask(Purpose.TEXTBACK, history=JUST_CALLED)
    assert decision.allowed and not decision.outreach


def test_the_latest_opt_out_or_opt_in_decides_for_that_sender_only():
    record("opt_out", ref="SM1")
    blocked = ask()
    assert blocked.verdict is Verdict.BLOCKED and blocked.rule is Rule.OPTED_OUT
    assert ask(sender=OTHER_LINE).allowed
    record("help", ref="SM2")  # asking for help does not undo an opt-out
    assert not ask().allowed
    record("opt_in", ref="SM3")
    assert ask().allowed


def test_an_opt_out_for_the_whole_brokerage_blocks_every_line_until_an_opt_in():
    record("opt_out", sender="", source="agent")
    assert ask(Purpose.TEXTBACK, sender=OTHER_LINE).rule is Rule.OPTED_OUT
    record("opt_in", sender=OTHER_LINE, ref="SM1")  # START to one line: that line only
    assert ask(sender=OTHER_LINE).allowed and ask(sender=LINE).rule is Rule.OPTED_OUT
    record("express_opt_in", sender="", source="agent")
    assert ask(sender=LINE).allowed


def test_a_lines_own_opt_out_outlasts_any_brokerage_wide_opt_in():
    record("opt_out", ref="SM1")
    record("express_opt_in", sender="", source="agent")
    assert ask(sender=LINE).rule is Rule.OPTED_OUT and ask(sender=OTHER_LINE).allowed
    record("opt_in", ref="SM2")
    assert ask(sender=LINE).allowed


def test_an_opt_out_holds_for_every_identity_of_the_line():
    record("opt_out", ref="SM1")  # texted to the number; the line now sends through a Messaging Service
    decision = gate_check(phone=PHONE, senders=("MG" + "0" * 32, LINE), purpose=Purpose.REPLY, at=NOON, history=QUIET)
    assert decision.rule is Rule.OPTED_OUT


def test_only_a_prompt_confirmation_of_the_latest_opt_out_gets_through():
    first = record("opt_out", ref="SM1")
    assert ask(Purpose.OPT_OUT_CONFIRMATION, at=first.created_at, consent_event_id=first.pk).allowed
    late = ask(Purpose.OPT_OUT_CONFIRMATION, at=first.created_at + dt.timedelta(minutes=5, seconds=1), consent_event_id=first.pk)
    assert late.rule is Rule.STALE_CONFIRMATION and "5 minutes" in late.reason
    record("opt_in", ref="SM2")
    second = record("opt_out", ref="SM3")
    assert ask(Purpose.OPT_OUT_CONFIRMATION, at=second.created_at, consent_event_id=first.pk).rule is Rule.STALE_CONFIRMATION
    assert ask(Purpose.OPT_OUT_CONFIRMATION, at=second.created_at, consent_event_id=second.pk).allowed


def test_it_blocks_landlines():
    NumberProfile.objects.create(phone=PHONE, line_type=NumberProfile.LineType.LANDLINE)
    decision = ask(Purpose.TEXTBACK, history=JUST_CALLED)
    assert decision.rule is Rule.LANDLINE and "Landline" in decision.reason


def test_the_brokerage_do_not_contact_list_outlasts_a_start_to_one_line():
    record("opt_out", sender="", source="internal_dnc")
    assert ask(Purpose.TEXTBACK, history=JUST_CALLED).rule is Rule.DO_NOT_CONTACT
    record("opt_in", ref="SM1")  # START to one line: that line's own opt-out is lifted, the list is not
    assert ask(Purpose.TEXTBACK, history=JUST_CALLED).rule is Rule.DO_NOT_CONTACT
    record("express_opt_in", sender="", source="agent")
    assert ask(Purpose.TEXTBACK, history=JUST_CALLED).allowed


def test_a_national_do_not_call_number_gets_answers_but_no_cold_outreach():
    DoNotCallNumber.objects.create(phone=PHONE, imported_at=NOON)
    assert ask(history=JUST_CALLED).allowed  # answering their inquiry
    assert ask(history=QUIET).allowed  # they inquired two days ago: three months of relationship
    stale = ContactHistory(last_inbound_at=NOON - dt.timedelta(days=91))
    assert ask(history=stale).rule is Rule.NATIONAL_DNC
    assert ask(history=ContactHistory()).rule is Rule.NATIONAL_DNC
    record("express_opt_in", sender="", source="web_form")
    assert ask(history=stale).allowed


@pytest.mark.parametrize("purpose", [Purpose.OPT_IN_CONFIRMATION, Purpose.HELP_REPLY, Purpose.AGENT_ALERT])
def test_answers_to_keywords_and_alerts_to_agents_go_at_any_hour(purpose):
    midnight = dt.datetime(2026, 11, 24, 23, 59, tzinfo=EASTERN)
    assert ask(purpose, at=midnight, history=ContactHistory()).allowed


def test_the_textback_goes_at_night_unless_the_broker_holds_replies_too():
    night = dt.datetime(2026, 11, 24, 23, 30, tzinfo=EASTERN)
    called = ContactHistory(last_inbound_at=night - dt.timedelta(seconds=20))
    assert ask(Purpose.TEXTBACK, at=night, history=called).allowed
    held = ask(Purpose.TEXTBACK, at=night, history=called, policy=TextingPolicy(quiet_hours_for_replies=True))
    assert held.verdict is Verdict.DEFERRED and held.rule is Rule.QUIET_HOURS
    assert held.until == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # 8:00 am in New York


def test_a_textback_that_could_not_go_for_an_hour_is_no_longer_a_reply():
    """Twilio was down from 8:55 pm; the retry at 10 pm would reach out at night: it waits."""
    night = dt.datetime(2026, 11, 24, 22, 0, tzinfo=EASTERN)
    decision = ask(Purpose.TEXTBACK, at=night, history=ContactHistory(last_inbound_at=night - dt.timedelta(minutes=65)))
    assert decision.verdict is Verdict.DEFERRED and decision.until == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)


def test_an_agent_answering_a_fresh_text_is_a_reply_but_reaching_out_later_waits_for_the_morning():
    night = dt.datetime(2026, 11, 24, 22, 0, tzinfo=EASTERN)
    assert ask(at=night, history=ContactHistory(last_inbound_at=night - dt.timedelta(minutes=29))).allowed
    waits = ask(at=night, history=ContactHistory(last_inbound_at=night - dt.timedelta(minutes=31)))
    assert waits.verdict is Verdict.DEFERRED and waits.until == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
    assert "9:00 pm in America/New_York" in waits.reason


def test_quiet_hours_are_the_callers_not_the_offices():
    # 9:30 pm in New York is 6:30 pm in San Francisco; an office in New York texts its Californian caller.
    at = dt.datetime(2026, 11, 24, 21, 30, tzinfo=EASTERN)
    policy = TextingPolicy(timezone="America/New_York")
    assert ask(phone=SAN_FRANCISCO, at=at, policy=policy).allowed
    assert ask(phone=NEW_YORK, at=at, policy=policy).verdict is Verdict.DEFERRED
    # 7:30 am in Chicago is 8:30 in New York: too early for the Tulsa caller.
    early = dt.datetime(2026, 11, 24, 8, 30, tzinfo=EASTERN)
    assert ask(phone=TULSA, at=early).until == dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)  # 8:00 am Central


def test_florida_and_oklahoma_stop_at_eight_whatever_the_office_allows():
    at = dt.datetime(2026, 11, 24, 20, 15, tzinfo=EASTERN)
    assert ask(phone=MIAMI, at=at).verdict is Verdict.DEFERRED
    assert ask(phone=NEW_YORK, at=at).allowed


def test_a_broker_can_tighten_the_window():
    policy = TextingPolicy(quiet_start=dt.time(9), quiet_end=dt.time(18))
    assert ask(at=NOON.replace(hour=8, minute=30), policy=policy).until == dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)
    assert ask(at=NOON.replace(hour=18), policy=policy).verdict is Verdict.DEFERRED
    assert ask(at=NOON.replace(hour=17, minute=59), policy=policy).allowed


def test_outreach_is_capped_per_day_and_the_next_one_waits_for_a_slot():
    sent = tuple(NOON - dt.timedelta(hours=h) for h in (20, 10, 5, 3, 1))
    decision = ask(history=ContactHistory(last_inbound_at=NOON - dt.timedelta(days=3), outreach_sent=sent))
    assert decision.verdict is Verdict.DEFERRED and decision.rule is Rule.MESSAGE_CAP
    assert decision.until == sent[0] + dt.timedelta(hours=24)  # 4:00 pm: the first of the five turns 24 h old
    fewer = ask(history=ContactHistory(last_inbound_at=NOON - dt.timedelta(days=3), outreach_sent=sent[1:]))
    assert fewer.allowed and fewer.outreach
    assert ask(history=ContactHistory(last_inbound_at=NOON - dt.timedelta(minutes=5), outreach_sent=sent)).allowed  # a reply


def test_florida_numbers_get_three_a_day():
    sent = tuple(NOON - dt.timedelta(hours=h) for h in (2, 1.5, 1))  # 10:00, 10:30 and 11:00 am
    decision = ask(phone=MIAMI, history=ContactHistory(outreach_sent=sent, last_inbound_at=NOON - dt.timedelta(days=1)))
    assert decision.rule is Rule.MESSAGE_CAP and "Florida or Oklahoma" in decision.reason
    assert decision.until == dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # 10:00 am the next day
    late = tuple(dt.datetime(2026, 11, 23, 19, m, tzinfo=EASTERN) for m in (50, 55, 59))
    at = dt.datetime(2026, 11, 24, 19, 59, 30, tzinfo=EASTERN)
    assert ask(phone=MIAMI, at=at, history=ContactHistory(outreach_sent=late)).allowed  # 24 h on: free again
    evening = tuple(dt.datetime(2026, 11, 24, 19, m, tzinfo=EASTERN) for m in (0, 10, 20))
    decision = ask(phone=MIAMI, at=dt.datetime(2026, 11, 25, 18, 55, tzinfo=EASTERN), history=ContactHistory(outreach_sent=evening))
    assert decision.until == dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.UTC)  # 7:00 pm, 24 h after the first


def test_consent_events_cannot_be_edited_or_deleted():
    event = record("opt_out", ref="SM1")
    event.kind = "opt_in"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.filter(pk=event.pk).update(kind="opt_in")
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.create(phone=PHONE, sender=LINE, kind="opt_in", source="keyword")


def test_a_replayed_source_records_once():
    record("opt_out", ref="SM1")
    record("opt_out", ref="SM1")
    assert ConsentEvent.objects.count() == 1


@pytest.mark.parametrize("body,keyword", [
    ("STOP", Keyword.OPT_OUT), ("  unsubscribe. ", Keyword.OPT_OUT), ("Start", Keyword.OPT_IN),
    ("info", Keyword.HELP), ("stop it", None), ("Stop by Sunday?", None), ("", None),
])
def test_keywords_are_whole_messages_in_any_case(body, keyword):
    assert keyword_classify(body) is keyword


def test_twilio_advanced_opt_out_verdict_wins():
    assert keyword_classify("arrêter", "STOP") is Keyword.OPT_OUT
