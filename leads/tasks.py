"""Worker entry points (django-q2). They adapt arguments and call services, nothing more."""

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from leads.call_back import call_back_place
from leads.follow_ups import follow_ups_run_due
from leads.selectors import leads_due_ids, webhooks_stranded_ids
from leads.services import (
    lead_deadline_pass, message_send, missed_call_outcomes_catch_up, outbox_due_ids, records_prune, status_events_reconcile,
    twilio_webhook_process,
)
from textback_site.queue import process_broker

logger = logging.getLogger(__name__)

SEND_TASK = "leads.tasks.message_send_task"
WEBHOOK_TASK = "leads.tasks.webhook_process_task"
CALL_BACK_TASK = "leads.tasks.call_back_place_task"
DEADLINE_TASK = "leads.tasks.lead_deadlines_task"
# Leads per task: the sweep costs a Redis round trip per task, so batches keep it to a few dozen
# round trips however many leads fall due at once, while the batches still spread over the workers.
DEADLINE_BATCH = 25


def enqueue_message_send(message_id: int) -> None:
    async_task(SEND_TASK, message_id, task_name=f"send-message-{message_id}", group="outbox", broker=process_broker())


def enqueue_webhook_process(webhook_id: int) -> None:
    async_task(WEBHOOK_TASK, webhook_id, task_name=f"webhook-{webhook_id}", group="webhooks", broker=process_broker())


def enqueue_call_back_place(call_id: int) -> None:
    async_task(CALL_BACK_TASK, call_id, task_name=f"call-back-{call_id}", group="call-backs", broker=process_broker())


def enqueue_lead_deadlines(lead_ids: list[int]) -> None:
    async_task(DEADLINE_TASK, lead_ids, task_name=f"deadlines-{lead_ids[0]}", group="escalation", broker=process_broker())


def message_send_task(message_id: int) -> None:
    message_send(message_id=message_id)


def webhook_process_task(webhook_id: int) -> None:
    twilio_webhook_process(webhook_id=webhook_id)


def call_back_place_task(call_id: int) -> None:
    call_back_place(call_id=call_id)


def records_prune_task() -> int:
    return records_prune(now=timezone.now())


def missed_call_outcomes_catch_up_task() -> int:
    return missed_call_outcomes_catch_up()


def follow_ups_task() -> int:
    """Every minute: the follow-up steps that are due (few: one or two per unanswered text-back)."""
    return follow_ups_run_due()


def outbox_sweep_task() -> int:
    """Every minute: hand stranded voice webhooks, due retries and stranded texts back to the workers,
    and apply status callbacks that raced the worker."""
    now, stuck_after = timezone.now(), dt.timedelta(seconds=settings.OUTBOX_STUCK_SECONDS)
    webhook_ids = webhooks_stranded_ids(now=now, stuck_after=stuck_after, max_attempts=settings.OUTBOX_MAX_ATTEMPTS)
    for webhook_id in webhook_ids:
        enqueue_webhook_process(webhook_id)
    message_ids = outbox_due_ids(now=now, stuck_after=stuck_after)
    for message_id in message_ids:
        enqueue_message_send(message_id)
    reconciled = status_events_reconcile(before=now - dt.timedelta(seconds=5))
    return len(webhook_ids) + len(message_ids) + reconciled


def lead_deadlines_task(lead_ids: list[int]) -> None:
    for lead_id in lead_ids:
        try:
            lead_deadline_pass(lead_id=lead_id)
        except Exception:  # one lead's failure must not hold up the others; the next sweep retries it
            logger.exception("escalation step for lead %s failed; the next sweep retries it", lead_id)


def escalation_sweep_task() -> int:
    """Every minute: the leads whose escalation window or claim offer ran out are handed to the
    workers, DEADLINE_BATCH to a task.

    The sweep only reads an index and enqueues, so it stays fast however many leads are open, and
    the steps spread over every worker; two sweeps (or a slow queue) enqueuing the same lead twice
    is harmless, since a step re-checks under the lead's lock that it is still due.
    """
    lead_ids = leads_due_ids(now=timezone.now())
    for start in range(0, len(lead_ids), DEADLINE_BATCH):
        enqueue_lead_deadlines(lead_ids[start:start + DEADLINE_BATCH])
    return len(lead_ids)
