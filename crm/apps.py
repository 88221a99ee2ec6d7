from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM write-back"

    def ready(self):
        from crm import receivers  # noqa: F401  (connects them)
