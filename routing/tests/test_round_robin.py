"""Weighted round-robin: shares follow the weights exactly over every full turn, agents away
neither earn nor lose, and simultaneous missed calls take turns without skipping anyone."""

import threading
from fractions import Fraction

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import new_sid
from leads.models import Lead, LeadEvent
from leads.services import missed_call_record
from routing.models import Agent, Office, PoolMember, RoundRobinTurn, RoutingRule
from routing.selectors import line_by_number
from routing.services import pool_pick, weighted_turn

weights_st = st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=10)


def run_turns(weights: list[int], availability_by_step: list[set[int]]):
    """Play the round-robin on plain data: at each step who was picked (None when nobody was
    available), and each agent's fair expectation (the share they earned while available), exactly."""
    credits: dict[int, float] = {}
    counts = [0] * len(weights)
    expected = [Fraction(0)] * len(weights)
    for available in availability_by_step:
        if not available:
            yield None, counts, expected, credits
            continue
        chosen, updated = weighted_turn(weights={i: weights[i] for i in available}, credits=credits)
        credits = {**credits, **updated}  # agents away keep what they had
        total = sum(weights[i] for i in available)
        for i in available:
            expected[i] += Fraction(weights[i], total)
        counts[chosen] += 1
        yield chosen, counts, expected, credits


@given(weights=weights_st, rounds=st.integers(min_value=1, max_value=4))
@settings(max_examples=300, deadline=None)
def test_shares_follow_the_weights_exactly_over_every_full_turn(weights, rounds):
    total = sum(weights)
    everyone = set(range(len(weights)))
    for step, (_, counts, expected, _) in enumerate(run_turns(weights, [everyone] * (total * rounds)), start=1):
        # Never a whole lead ahead of an exact share, never two behind, at any moment...
        assert all(-1 < expected[i] - counts[i] < 2 for i in everyone)
        if step % total == 0:  # ...and exact at the end of every full turn of the pool
            assert counts == [w * step // total for w in weights]


@given(
    weights=weights_st,
    changes=st.lists(st.tuples(st.integers(min_value=0, max_value=9), st.booleans()), min_size=1, max_size=120),
)
@settings(max_examples=300, deadline=None)
def test_agents_away_are_never_picked_and_lose_no_share_for_it(weights, changes):
    n = len(weights)
    available, schedule = set(range(n)), []
    for agent, present in changes:
        (available.add if present else available.discard)(agent % n)
        schedule.append(set(available))
    for step, (chosen, counts, expected, credits) in enumerate(run_turns(weights, schedule)):
        assert chosen in schedule[step] if schedule[step] else chosen is None
        # The books balance: what everyone is owed sums to nothing, so no lead is lost or made up.
        assert abs(sum(credits.values())) < 1e-6
        # However availability comes and goes, nobody drifts far from the share they earned while present.
        assert all(abs(expected[i] - counts[i]) < max(2, n) for i in range(n))


# --- on the database ------------------------------------------------------------------------------


@pytest.mark.django_db
@given(
    weights=st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=3),
    away=st.lists(st.sets(st.integers(min_value=0, max_value=2), max_size=2), min_size=1, max_size=24),
)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_pool_on_the_database_takes_the_same_turns(brokerage, weights, away):
    """The stored turns replay the model exactly, with agents going off duty and back."""
    office = Office.objects.get(name="Downtown")
    agents = list(Agent.objects.filter(office=office).order_by("id"))[: len(weights)]
    rule = RoutingRule.objects.create(office=office, name=f"Pool {new_sid('')[:6]}")
    for agent, weight in zip(agents, weights):
        PoolMember.objects.create(rule=rule, agent=agent, weight=weight)
    credits: dict[int, float] = {}
    for gone in away:
        absent = {agents[i].pk for i in gone if i < len(agents)}
        Agent.objects.filter(office=office).update(on_duty=True)
        Agent.objects.filter(pk__in=absent).update(on_duty=False)
        present = {a.pk: w for a, w in zip(agents, weights) if a.pk not in absent}
        skipped = []
        picked = pool_pick(rule, at=timezone.now(), skipped=skipped)
        if not present:
            assert picked is None and len(skipped) == len(agents)
            continue
        expected, updated = weighted_turn(weights=present, credits=credits)
        credits = {**credits, **updated}
        assert picked.pk == expected
        assert {s[0] for s in skipped} == {a.name for a in agents if a.pk in absent}
    turns = {t.agent_id: t for t in RoundRobinTurn.objects.filter(rule=rule)}
    assert all(abs(turns[a].credit - c) < 1e-9 for a, c in credits.items())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row-level concurrency needs PostgreSQL")
def test_simultaneous_missed_calls_take_exact_weighted_turns(brokerage):
    """24 missed calls at once from 24 numbers over a pool weighted 3:2:1 (four full turns):
    each lead assigned once, and exactly 12, 8 and 4 leads per agent."""
    office = Office.objects.get(name="Downtown")
    ann, ben, tess = Agent.objects.filter(office=office).order_by("id")
    catch_all = RoutingRule.objects.get(office=office, is_catch_all=True)
    for agent, weight in ((ann, 3), (ben, 2), (tess, 1)):
        PoolMember.objects.create(rule=catch_all, agent=agent, weight=weight)
    line = line_by_number(number="+15555550100")
    callers = [f"+1555556{n:04d}" for n in range(24)]
    barrier, errors = threading.Barrier(len(callers)), []

    def call(phone):
        from django.db import connections

        try:
            barrier.wait()
            missed_call_record(line=line, call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call, args=(phone,)) for phone in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Lead.objects.count() == 24
    assert LeadEvent.objects.filter(kind=LeadEvent.Kind.ASSIGNED).count() == 24  # one decision per lead
    counts = {a.name: Lead.objects.filter(assigned_agent=a).count() for a in (ann, ben, tess)}
    assert counts == {ann.name: 12, ben.name: 8, tess.name: 4}
    assert {t.agent_id: t.assignments for t in RoundRobinTurn.objects.filter(rule=catch_all)} == {ann.pk: 12, ben.pk: 8, tess.pk: 4}
