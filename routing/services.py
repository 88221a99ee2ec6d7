"""Routing decisions that write: who gets the next lead, and who gets it when nobody answers.

Routing knows offices, rules and agents, never leads: callers hand it `LeadFacts` and record
its decisions on the lead themselves. Every decision says why (`RoutingDecision.detail`).
"""

import dataclasses
import datetime as dt

from django.db import transaction

from routing.models import CATCH_ALL_POSITION, Agent, EscalationFinal, Office, RoundRobinTurn, RoutingRule
from routing.selectors import (
    LeadFacts, agent_sticky_refusal, availability, brokers_for, rule_for, rule_pool, team_leaders,
)

Strategy, Fallback = RoutingRule.Strategy, RoutingRule.Fallback
STICKY = "sticky"


@dataclasses.dataclass
class RoutingDecision:
    """Who gets a lead (None: the office pond, or an offer to `offered_to`), and why."""

    agent: Agent | None
    rule: RoutingRule | None
    strategy: str  # a Strategy value, or STICKY
    target: str  # for people: "Buyers (weighted round-robin)", "the office pond"
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    offered_to: list[Agent] = dataclasses.field(default_factory=list)
    claim_deadline: dt.datetime | None = None
    fallback: str = ""  # why the rule's fallback decided instead of its target

    @property
    def summary(self) -> str:
        if self.strategy == STICKY:
            return f"Repeat caller: back to {self.agent.name}, their agent."
        who = self.agent.name if self.agent else ("offered to " + ", ".join(a.name for a in self.offered_to) if self.offered_to else "the office pond")
        text = f"Rule “{self.rule.name}” → {self.target}: {who}." if self.rule else f"{who}."
        if self.fallback:
            text += f" Fallback: {self.fallback}."
        return text

    def detail(self) -> dict:
        """The why, as stored on the lead's event and shown in the thread and in admin."""
        return {
            "rule": self.rule.name if self.rule else "",
            "strategy": self.strategy,
            "target": self.target,
            "fallback": self.fallback,
            "skipped": [{"agent": name, "reason": reason} for name, reason in self.skipped],
            "offered_to": [a.name for a in self.offered_to],
        }


# --- weighted round-robin ------------------------------------------------------------------------


def weighted_turn(*, weights: dict[int, int], credits: dict[int, float]) -> tuple[int, dict[int, float]]:
    """Smooth weighted round-robin, counted in leads.

    Every available agent earns its share of this lead (weight / total of those available); the
    one furthest ahead in credit gets the lead and pays one. Credit is how many leads an agent is
    owed, so shares follow the weights exactly over every full turn of the pool, and an agent away
    neither earns nor loses: they come back where they left. Ties go to the lowest id. Returns
    the chosen agent and the new credits of the agents in `weights` (the others' stay as they are).
    """
    total = sum(weights.values())
    earned = {agent_id: credits.get(agent_id, 0.0) + weight / total for agent_id, weight in weights.items()}
    # Rounded so that float dust cannot break a tie the arithmetic meant.
    chosen = max(earned, key=lambda agent_id: (round(earned[agent_id], 9), -agent_id))
    earned[chosen] -= 1.0
    return chosen, earned


def _speakers_first(available: list[tuple[Agent, int]], language: str, skipped: list[tuple[str, str]]) -> list[tuple[Agent, int]]:
    """A lead who writes in a language goes to the available agents who speak it, when there are
    any; the others are passed over, with the reason. English is everyone's."""
    if not language or language == "en":
        return available
    speakers = [(agent, weight) for agent, weight in available if language in agent.languages]
    if not speakers:
        return available
    skipped.extend((agent.name, f"does not speak {language}") for agent, _ in available if language not in agent.languages)
    return speakers


def pool_pick(
    rule: RoutingRule, *, at: dt.datetime, skipped: list[tuple[str, str]], exclude: set[int] = frozenset(), language: str = "",
) -> Agent | None:
    """The next available agent of the rule's pool in weighted turn (among those who speak the
    lead's language, when any do); unavailable ones are added to `skipped` with the reason.

    The rule's row is locked while its turns move, so simultaneous missed calls take turns one
    after another: no agent is picked out of turn and no turn is lost (a row lock on PostgreSQL;
    on SQLite every writing transaction already holds the database's lock).
    """
    with transaction.atomic(savepoint=False):
        # Only the rule's row (its default ordering would join and lock the office too), and FOR NO
        # KEY UPDATE: pickers still queue behind each other, but a transaction that merely references
        # the rule (a lead's foreign key, checked at its COMMIT) does not wait for them.
        RoutingRule.objects.select_for_update(of=("self",), no_key=True).filter(pk=rule.pk).order_by().values_list("pk", flat=True).first()
        found = availability(rule_pool(rule), at=at, exclude=exclude)
        skipped.extend(found.skipped)
        if not found.available:
            return None
        available = _speakers_first(found.available, language, skipped)
        agents = {agent.pk: agent for agent, _ in available}
        turns = {t.agent_id: t for t in RoundRobinTurn.objects.filter(rule=rule, agent_id__in=agents)}
        chosen, credits = weighted_turn(
            weights={agent.pk: weight for agent, weight in available},
            credits={agent_id: turn.credit for agent_id, turn in turns.items()},
        )
        existing, new = [], []
        for agent_id, credit in credits.items():
            turn = turns.get(agent_id) or RoundRobinTurn(rule=rule, agent_id=agent_id)
            turn.credit = credit
            turn.assignments += agent_id == chosen
            (existing if turn.pk else new).append(turn)
        RoundRobinTurn.objects.bulk_update(existing, ["credit", "assignments"])
        RoundRobinTurn.objects.bulk_create(new)
        return agents[chosen]


# --- routing a lead ------------------------------------------------------------------------------


def _available_one(agent: Agent | None, *, at: dt.datetime, skipped: list[tuple[str, str]]) -> Agent | None:
    if agent is None:
        return None
    found = availability([(agent, 1)], at=at)
    skipped.extend(found.skipped)
    return agent if found.available else None


def _fallback(rule: RoutingRule, facts: LeadFacts, *, at: dt.datetime, skipped: list, why: str) -> RoutingDecision:
    """The rule's fallback, one level deep; when that cannot take the lead either, the office pond."""
    agent, target = None, rule.get_fallback_display().lower()
    if rule.fallback == Fallback.TEAM_LEADER:
        agent = next((a for a in team_leaders(office=facts.office) if _available_one(a, at=at, skipped=skipped)), None)
    elif rule.fallback == Fallback.AGENT:
        agent = _available_one(rule.fallback_agent, at=at, skipped=skipped)
    elif rule.fallback == Fallback.RULE and rule.fallback_rule is not None:
        target = f"the pool of “{rule.fallback_rule.name}”"
        agent = pool_pick(rule.fallback_rule, at=at, skipped=skipped, language=facts.language)
    if agent is None and rule.fallback != Fallback.POND:
        why += f"; {target} could not take it either, so the office pond"
        target = "the office pond"
    return RoutingDecision(agent=agent, rule=rule, strategy=rule.strategy, target=target, skipped=skipped, fallback=why)


def lead_route(*, facts: LeadFacts, current_agent: Agent | None, at: dt.datetime) -> RoutingDecision:
    """Decide who gets a lead that needs a human now.

    A repeat caller goes back to their agent unless that agent is absent; otherwise the first of
    the office's rules that matches decides, by its strategy, and its fallback when its target has
    nobody available.
    """
    skipped: list[tuple[str, str]] = []
    if current_agent is not None:
        refusal = agent_sticky_refusal(current_agent)
        if not refusal:
            return RoutingDecision(agent=current_agent, rule=None, strategy=STICKY, target="their agent")
        skipped.append((current_agent.name, f"{refusal} (the caller's agent)"))
    rule = rule_for(facts, at=at)
    strategy = rule.strategy
    if strategy == Strategy.POND:
        return RoutingDecision(agent=None, rule=rule, strategy=strategy, target="the office pond", skipped=skipped)
    if strategy == Strategy.ROUND_ROBIN:
        agent = pool_pick(rule, at=at, skipped=skipped, language=facts.language)
        target, why = "weighted round-robin", "nobody in the pool is available"
    elif strategy == Strategy.FIRST_TO_CLAIM:
        found = availability(rule_pool(rule), at=at)
        skipped.extend(found.skipped)
        if found.available:
            return RoutingDecision(
                agent=None, rule=rule, strategy=strategy, target="first to claim", skipped=skipped,
                offered_to=[a for a, _ in _speakers_first(found.available, facts.language, skipped)], claim_deadline=at + dt.timedelta(minutes=rule.claim_timeout_minutes),
            )
        agent, target, why = None, "first to claim", "nobody in the pool is available"
    elif strategy == Strategy.AGENT:
        agent = _available_one(rule.agent, at=at, skipped=skipped)
        target, why = "a specific agent", "the agent is not available"
    else:
        listing_agent = facts.line.listing_agent
        agent = _available_one(listing_agent, at=at, skipped=skipped)
        target = "the listing agent"
        why = "the listing agent is not available" if listing_agent else "the line has no listing agent"
    if agent is not None:
        return RoutingDecision(agent=agent, rule=rule, strategy=strategy, target=target, skipped=skipped)
    return _fallback(rule, facts, at=at, skipped=skipped, why=why)


def claim_timeout_route(*, rule: RoutingRule, facts: LeadFacts, at: dt.datetime) -> RoutingDecision:
    """Nobody of the pool claimed an offered lead in time: the rule's fallback gets it."""
    return _fallback(rule, facts, at=at, skipped=[], why=f"nobody claimed it within {rule.claim_timeout_minutes} min")


# --- the escalation ladder -----------------------------------------------------------------------


@dataclasses.dataclass
class EscalationStep:
    """One rung: the lead goes to `agent` (None with `pond`: the office pond); `alerted` are told."""

    step: int
    rung: str  # for people: "next agent in the pool", "team leader", ...
    agent: Agent | None
    pond: bool = False
    reassign: bool = True
    alerted: list[Agent] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def detail(self) -> dict:
        return {
            "step": self.step, "rung": self.rung,
            "skipped": [{"agent": name, "reason": reason} for name, reason in self.skipped],
            "alerted": [a.name for a in self.alerted],
        }


def escalation_step_next(
    *, office: Office, rule: RoutingRule | None, step: int, current_agent: Agent | None, at: dt.datetime, language: str = "",
) -> EscalationStep:
    """The rung after `step` on the office's ladder: other agents of the lead's pool (as many as
    the office says), the team leader, then a broker or the pond; after that the ladder keeps
    alerting the team leaders and brokers every window while the lead still waits. A rung with
    nobody to take the lead is skipped, with the reason."""
    skipped: list[tuple[str, str]] = []
    exclude = {current_agent.pk} if current_agent else set()
    agent_steps = office.escalation_agent_steps
    rule = rule or office_catch_all(office=office)
    step += 1
    if step <= agent_steps:
        agent = pool_pick(rule, at=at, skipped=skipped, exclude=exclude, language=language)
        if agent is not None:
            return EscalationStep(step=step, rung="next agent in the pool", agent=agent, alerted=[agent], skipped=skipped)
        step = agent_steps + 1
    leaders = [a for a in team_leaders(office=office) if a.pk not in exclude]
    if step == agent_steps + 1:
        agent = next((a for a in leaders if _available_one(a, at=at, skipped=skipped)), None) or (leaders[0] if leaders else None)
        if agent is not None:
            return EscalationStep(step=step, rung="team leader", agent=agent, alerted=[agent], skipped=skipped)
        skipped.append(("Team leader", "the office has none"))
        step += 1
    brokers = brokers_for(office=office)
    if step == agent_steps + 2:
        if office.escalation_final == EscalationFinal.POND:
            everyone = [a for a in availability(rule_pool(office_catch_all(office=office)), at=at).available]
            return EscalationStep(
                step=step, rung="office pond", agent=None, pond=True, alerted=[a for a, _ in everyone], skipped=skipped
            )
        broker = next((b for b in brokers if b.pk not in exclude), None)
        if broker is not None:
            return EscalationStep(step=step, rung="broker", agent=broker, alerted=[broker], skipped=skipped)
        skipped.append(("Broker", "the brokerage has none"))
    # Past the last rung: the lead stays where it is and the people who answer for the office hear again.
    return EscalationStep(
        step=step, rung="still waiting", agent=current_agent, reassign=False,
        alerted=list({a.pk: a for a in [*leaders, *brokers] if a.pk not in exclude}.values()), skipped=skipped,
    )


# --- set-up --------------------------------------------------------------------------------------


def office_catch_all(*, office: Office) -> RoutingRule:
    """The office's catch-all rule, made on first need (every office gets one when it is created)."""
    rule, _ = RoutingRule.objects.get_or_create(
        office=office, is_catch_all=True,
        defaults={"name": "Everyone else", "position": CATCH_ALL_POSITION, "strategy": Strategy.ROUND_ROBIN},
    )
    return rule


def agent_user_access_sync(agent: Agent) -> None:
    """Brokers run the brokerage from Django admin; nobody else gets in there by being an agent.

    Demoting a broker takes the access away again, so the role is the one place it is decided.
    """
    user = agent.user
    is_broker = agent.role == Agent.Role.BROKER
    if (user.is_staff, user.is_superuser) != (is_broker, is_broker):
        user.is_staff = user.is_superuser = is_broker
        user.save(update_fields=["is_staff", "is_superuser"])
