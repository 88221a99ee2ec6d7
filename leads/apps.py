from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads, calls and texts"

    def ready(self):
        from leads import receivers  # noqa: F401  (connects them)
