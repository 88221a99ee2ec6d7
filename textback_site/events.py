"""The one way to publish live events: after the transaction commits, to Channels groups.

Services decide who hears what (groups such as agent.<id>, office.<id>, lead.<id>); consumers
only relay. Publishing after commit means nobody is told about a row that was rolled back.
A service may name the groups with a function, called at commit: a lead created and assigned
in one transaction is then announced to its agent only, not to everyone who could see it for a
moment while it was unassigned.

Speed matters here because the missed-call webhook publishes several events: all events of one
transaction scope go out in one batch, from one long-lived event loop per process, instead of
one loop hop (and, in the worker, one new Redis connection) per event.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class _PublisherLoop:
    """A background event loop that keeps the channel layer's Redis connections open."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self.in_order: asyncio.Lock | None = None  # batches go out one after another (FIFO)

    def get(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Lock]:
        with self._lock:
            # A forked worker inherits the object but not the thread: start its own.
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                self.in_order = asyncio.Lock()
                threading.Thread(target=self._loop.run_forever, name="live-events", daemon=True).start()
            return self._loop, self.in_order


_publisher = _PublisherLoop()


Groups = str | Callable[[], Iterable[str]]


def _resolved(batch: list[tuple[Groups, dict]]) -> list[tuple[str, dict]]:
    return [
        (group, event)
        for groups, event in batch
        for group in ([groups] if isinstance(groups, str) else groups())
    ]


BATCH = "live.batch"  # several events for one group from one transaction: {"type": BATCH, "events": [...]}


async def _send_all(batch: list[tuple[str, dict]], in_order: asyncio.Lock) -> None:
    """One message per group: a consumer then gets a transaction's events together, whatever
    the network does between them, and Redis sees one round trip per group instead of per event."""
    by_group: dict[str, list[dict]] = {}
    for group, event in batch:
        by_group.setdefault(group, []).append(event)
    layer = get_channel_layer()
    async with in_order:
        for group, events in by_group.items():
            await layer.group_send(group, events[0] if len(events) == 1 else {"type": BATCH, "events": events})


def _report_failure(future) -> None:
    if future.exception() is not None:
        # A live page missing an event catches up on reload; the write itself has committed.
        logger.error("could not publish live events: %r", future.exception())


def _send_batch(batch: list[tuple[str, dict]]) -> None:
    """Hand the batch to the publisher loop and return: the request or task does not wait on Redis."""
    loop, in_order = _publisher.get()
    asyncio.run_coroutine_threadsafe(_send_all(batch, in_order), loop).add_done_callback(_report_failure)


def publish_on_commit(group: Groups, event: dict) -> None:
    """Send `event` to `group` (or to each group the function returns at commit) once the
    current transaction commits; at once outside one."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _send_batch(_resolved([(group, event)]))
        return
    # Join the batch registered last in this same savepoint scope, so a rolled-back savepoint
    # still discards exactly its own events along with its callback.
    if connection.run_on_commit:
        savepoint_ids, callback, _ = connection.run_on_commit[-1]
        batch = getattr(callback, "live_events_batch", None)
        if batch is not None and savepoint_ids == set(connection.savepoint_ids):
            batch.append((group, event))
            return
    batch = [(group, event)]

    def flush():
        _send_batch(_resolved(batch))

    flush.live_events_batch = batch
    transaction.on_commit(flush)
