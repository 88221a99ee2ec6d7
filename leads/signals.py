"""Moments in a lead's life that other systems (a brokerage's CRM) want to hear about.

Sent inside the transaction that made the moment, so a receiver that records something (an
outbox row for a CRM) commits or rolls back with it: nothing is announced that did not happen,
and nothing that happened goes unannounced. Receivers must be quick: the missed call's moment
is on the text-back's path.
"""

from django.dispatch import Signal


class Milestone:
    MISSED_CALL = "missed_call"  # a call nobody answered (the lead may be new or known)
    QUALIFIED = "qualified"  # the qualification script finished or stopped, with what it learnt
    APPOINTMENT = "appointment"  # an agent booked an appointment with the lead


# sender=Lead, lead=<Lead>, milestone=<Milestone value>, at=<datetime>
lead_milestone = Signal()
