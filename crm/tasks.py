"""Worker entry points (django-q2) for the CRM write-back. They adapt arguments and call services."""

from django_q.tasks import async_task

from crm.services import crm_deliveries_sweep, crm_delivery_send
from textback_site.queue import process_broker

SEND_TASK = "crm.tasks.crm_delivery_send_task"


def enqueue_delivery_send(delivery_id: int) -> None:
    async_task(SEND_TASK, delivery_id, task_name=f"crm-delivery-{delivery_id}", group="crm", broker=process_broker())


def crm_delivery_send_task(delivery_id: int) -> None:
    crm_delivery_send(delivery_id=delivery_id)


def crm_deliveries_sweep_task() -> int:
    """Every minute: due retries, deliveries whose task was lost, and claims whose worker died."""
    return crm_deliveries_sweep()
