"""publish_on_commit batches a transaction's events; a rolled-back savepoint takes its own along."""

import pytest
from django.db import transaction

from textback_site.events import publish_on_commit

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_go_out_after_commit_in_order_and_rolled_back_ones_never(live_events):
    live_events.join("office.1")
    with transaction.atomic():
        publish_on_commit("office.1", {"type": "test.event", "n": 1})
        with transaction.atomic():  # a savepoint that commits
            publish_on_commit("office.1", {"type": "test.event", "n": 2})
        with pytest.raises(RuntimeError), transaction.atomic():  # one that rolls back
            publish_on_commit("office.1", {"type": "test.event", "n": 3})
            raise RuntimeError
        publish_on_commit("office.1", {"type": "test.event", "n": 4})
        assert live_events.drain(timeout=0.2) == []  # nothing before the commit
    assert [e["n"] for e in live_events.drain()] == [1, 2, 4]


def test_a_rolled_back_transaction_publishes_nothing(live_events):
    live_events.join("office.1")
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_on_commit("office.1", {"type": "test.event", "n": 1})
        raise RuntimeError
    assert live_events.drain() == []


def test_outside_a_transaction_it_publishes_at_once(live_events):
    live_events.join("office.1")
    publish_on_commit("office.1", {"type": "test.event", "n": 1})
    assert [e["n"] for e in live_events.drain()] == [1]
