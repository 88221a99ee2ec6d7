"""Worker entry points (django-q2). They adapt arguments and call services, nothing more."""

import datetime as dt
import functools
import os

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from leads.services import message_send, outbox_due_ids

SEND_TASK = "leads.tasks.message_send_task"


@functools.cache
def _broker(pid: int) -> Broker:
    """One broker client per process: django-q2 would otherwise open a new Redis connection per task."""
    return get_broker()


def enqueue_message_send(message_id: int) -> None:
    async_task(SEND_TASK, message_id, task_name=f"send-message-{message_id}", group="outbox", broker=_broker(os.getpid()))


def message_send_task(message_id: int) -> None:
    message_send(message_id=message_id)


def outbox_sweep_task() -> int:
    """Every minute: hand due retries and stranded rows back to the workers."""
    ids = outbox_due_ids(now=timezone.now(), stuck_after=dt.timedelta(seconds=settings.OUTBOX_STUCK_SECONDS))
    for message_id in ids:
        enqueue_message_send(message_id)
    return len(ids)
