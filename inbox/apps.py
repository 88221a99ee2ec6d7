from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbox"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        user_logged_out.connect(_close_live_pages, dispatch_uid="inbox-close-live-pages")


def _close_live_pages(sender, request, user, **kwargs):
    """Signing out ends that session's open inbox sockets too, not only its pages."""
    from inbox.consumers import session_group
    from textback_site.events import publish_on_commit

    if request is not None and request.session.session_key:
        publish_on_commit(session_group(request.session.session_key), {"type": "session.ended"})
