"""The inbox's websocket: relays live lead events to one browser tab as htmx fragments.

The services decide which groups hear an event; this consumer joins only the groups the
agent's role entitles them to, and still renders nothing for a lead `leads_visible_to` hides
from them. On every (re)connect it sends the tab's list and thread afresh, so a tab that was
offline catches up without a reload.
"""

import asyncio
import logging
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from inbox import live
from inbox.fragments import InboxState
from textback_site.events import BATCH

logger = logging.getLogger(__name__)

# Close codes the page's script understands: not signed in, or not an agent.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# Events of transactions that commit together (a webhook and the worker's send) arrive within a
# few milliseconds; waiting this long renders them as one frame.
COALESCE_SECONDS = 0.003


def session_group(session_key: str) -> str:
    """The sockets opened with one login session, closed when it signs out."""
    return f"session.{session_key}"


class InboxConsumer(AsyncWebsocketConsumer):
    session = None

    async def connect(self):
        self.pending: dict[int, list[dict]] = {}  # lead id -> events not rendered yet
        self.flushing: asyncio.Task | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        state = InboxState.from_params(dict(parse_qsl(self.scope["query_string"].decode())))
        session = await database_sync_to_async(live.session_open)(user=user, state=state)
        if session is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.session = session
        session.groups.append(session_group(self.scope["session"].session_key))
        for group in session.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send(text_data=await database_sync_to_async(live.catch_up)(session))

    async def disconnect(self, code):
        if self.flushing is not None:
            self.flushing.cancel()
        for group in self.session.groups if self.session else []:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """The page only listens; anything it sends is ignored."""

    async def session_ended(self, event):
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def dispatch(self, message):
        # Lead events are named for what happened ("message.created", "lead.assigned", ...);
        # all of them mean "this lead changed". Each lead is rendered once per burst (a
        # transaction's events come as one batch): the page shows the lead as it is now.
        events = message["events"] if message["type"] == BATCH else [message]
        lead_events = [event for event in events if "lead_id" in event]
        if not lead_events:
            await super().dispatch(message)
            return
        for event in lead_events:
            self.pending.setdefault(event["lead_id"], []).append(event)
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush())

    async def _flush(self):
        try:
            await asyncio.sleep(COALESCE_SECONDS)
            while self.pending:
                pending, self.pending = self.pending, {}
                try:
                    frame = await database_sync_to_async(live.frame_for_events)(self.session, pending)
                except Exception:
                    # One bad render must not silence the tab: the next event renders afresh.
                    logger.exception("could not render live events for agent %s", self.session.agent_id)
                    continue
                if frame:
                    await self.send(text_data=frame)
        finally:
            self.flushing = None
