"""What every app's control-room pages share."""


class ReadOnlyAdminMixin:
    """For records the product writes: visible to brokers, never added, edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
