"""The inbox's websocket: relays live lead events to one browser tab as htmx fragments.

The services decide which groups hear an event; this consumer joins only the groups the
agent's role entitles them to, and still renders nothing for a lead `leads_visible_to` hides
from them. On every (re)connect it sends the tab's list and thread afresh, so a tab that was
offline catches up without a reload.
"""

from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from inbox import live
from inbox.fragments import InboxState

# Close codes the page's script understands: not signed in, or not an agent.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class InboxConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        state = InboxState.from_params(dict(parse_qsl(self.scope["query_string"].decode())))
        session = await database_sync_to_async(live.session_open)(user_id=user.pk, state=state)
        if session is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.session = session
        for group in session.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send(text_data=await database_sync_to_async(live.catch_up)(session))

    async def disconnect(self, code):
        for group in getattr(self, "session", None) and self.session.groups or []:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """The page only listens; anything it sends is ignored."""

    async def dispatch(self, message):
        # Lead events are named for what happened ("message.created", "lead.assigned", ...);
        # all of them mean "this lead changed", so one handler renders them all.
        if "lead_id" in message and not message["type"].startswith("websocket."):
            frame = await database_sync_to_async(live.frame_for_event)(self.session, message)
            if frame:
                await self.send(text_data=frame)
            return
        await super().dispatch(message)
