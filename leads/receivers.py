"""Changes made outside the leads' own paths that change what followed their missed calls.

`compliance` and `routing` never import `leads`, so their admin edits cannot mark leads due
themselves; these receivers do it, and only mark (the minute's catch-up stores the outcomes).
"""

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from compliance.models import NumberProfile
from leads.models import Call
from leads.services import missed_call_outcomes_mark_due
from routing.models import Office

# The office's business-hours clock, which the "business hours" response times are counted on.
_CLOCK_FIELDS = ("timezone", "business_days", "opens_at", "closes_at")


def _leads_with_missed_calls(**where) -> list[int]:
    return list(Call.objects.filter(missed=True, **where).order_by().values_list("lead_id", flat=True).distinct())


@receiver(post_save, sender=NumberProfile, dispatch_uid="outcomes-line-type")
def number_line_type_changed(sender, instance: NumberProfile, created: bool, **kwargs) -> None:
    """A landline learnt or corrected (a lookup, a carrier error, a broker in admin). A first lookup
    that finds a mobile changes nothing, and spares the first text's path the query."""
    if created and instance.line_type != NumberProfile.LineType.LANDLINE:
        return
    missed_call_outcomes_mark_due(lead_ids=_leads_with_missed_calls(from_number=instance.phone))


@receiver(pre_save, sender=Office, dispatch_uid="outcomes-office-clock-before")
def office_clock_before(sender, instance: Office, **kwargs) -> None:
    old = Office.objects.filter(pk=instance.pk).values(*_CLOCK_FIELDS).first() if instance.pk else None
    instance._clock_before = old


@receiver(post_save, sender=Office, dispatch_uid="outcomes-office-clock")
def office_clock_changed(sender, instance: Office, created: bool, **kwargs) -> None:
    """New hours or a new time zone re-time every business-hours wait of the office's missed calls."""
    old = getattr(instance, "_clock_before", None)
    if created or old is None or all(old[f] == getattr(instance, f) for f in _CLOCK_FIELDS):
        return
    missed_call_outcomes_mark_due(lead_ids=_leads_with_missed_calls(line__office=instance))
