"""The leads app announces a lead's milestones; this is where the CRM write-back hears them.

`leads` never imports `crm`, so a signal is the seam: the receiver runs inside the transaction
that made the moment, and its outbox rows commit or roll back with it.
"""

from django.dispatch import receiver

from crm.services import crm_deliveries_record
from leads.signals import lead_milestone


@receiver(lead_milestone, dispatch_uid="crm-write-back")
def lead_milestone_reached(sender, lead, milestone: str, at, **kwargs) -> None:
    crm_deliveries_record(lead=lead, milestone=milestone, at=at)
