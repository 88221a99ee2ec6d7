from django.apps import AppConfig
from django.db.models.signals import post_save


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Offices, agents and lines"

    def ready(self):
        from routing.models import Office
        from routing.services import office_catch_all

        def catch_all_for_new_office(sender, instance, created, raw=False, **kwargs):
            # However an office is made (admin, import, a shell), it routes every lead from its first call.
            if created and not raw:
                office_catch_all(office=instance)

        post_save.connect(catch_all_for_new_office, sender=Office, dispatch_uid="routing-catch-all", weak=False)
