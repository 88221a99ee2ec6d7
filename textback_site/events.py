"""The one way to publish live events: after the transaction commits, to Channels groups.

Services decide who hears what (groups such as agent.<id>, office.<id>, lead.<id>); consumers
only relay. Publishing after commit means nobody is told about a row that was rolled back.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send_now(group: str, event: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception:
        # A live page missing one event catches up on reload; the write itself has committed.
        logger.exception("could not publish %s to %s", event.get("type"), group)


def publish_on_commit(group: str, event: dict) -> None:
    transaction.on_commit(lambda: group_send_now(group, event))
