"""The task queue's broker, one client per process."""

import functools
import os

from django_q.brokers import Broker, get_broker


@functools.cache
def _broker(pid: int) -> Broker:
    return get_broker()


def process_broker() -> Broker:
    """django-q2 would otherwise open a new Redis connection per task; keyed by process id, so a
    forked worker never shares its parent's connection."""
    return _broker(os.getpid())
