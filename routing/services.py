"""Routing decisions that write: who gets the next lead."""

from django.db import transaction

from routing.models import Agent, Office
from routing.selectors import agents_on_duty


def agent_next_in_turn(*, office: Office) -> Agent | None:
    """Weighted round-robin over the office's on-duty agents.

    The office row is locked while its cursor advances, so two simultaneous missed calls take
    consecutive turns instead of both landing on the same agent (on PostgreSQL a row lock; on
    SQLite the write lock every transaction already holds).
    """
    with transaction.atomic(savepoint=False):
        office = Office.objects.select_for_update().get(pk=office.pk)
        agents = agents_on_duty(office=office)
        if not agents:
            return None
        total = sum(a.weight for a in agents)
        turn = office.round_robin_cursor % total
        office.round_robin_cursor += 1
        office.save(update_fields=["round_robin_cursor"])
        for agent in agents:
            if turn < agent.weight:
                return agent
            turn -= agent.weight
    raise AssertionError("unreachable: turn is below the total weight")


def agent_user_access_sync(agent: Agent) -> None:
    """Brokers run the brokerage from Django admin; nobody else gets in there by being an agent.

    Demoting a broker takes the access away again, so the role is the one place it is decided.
    """
    user = agent.user
    is_broker = agent.role == Agent.Role.BROKER
    if (user.is_staff, user.is_superuser) != (is_broker, is_broker):
        user.is_staff = user.is_superuser = is_broker
        user.save(update_fields=["is_staff", "is_superuser"])
