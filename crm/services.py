"""Writes for the CRM write-back: the outbox rows a milestone makes, and sending them.

Same shape as the SMS outbox: a delivery is recorded in the transaction that made the moment
(nothing announced that did not happen, nothing lost that did), a worker sends it after the
commit, and a sweep hands back whatever a lost task or a dead worker left. A worker claims a
row with a lease before posting, so two workers never post the same delivery, and holds no
database lock while it waits on someone else's server. Each endpoint's deliveries go one at a
time in the order they were made (`crm.selectors.older_pending_exists` says why); when one
settles, the next in line is handed to a worker at once.
"""

import datetime as dt
import email.utils
import logging
import time

import requests
from django.db import transaction
from django.utils import timezone

from crm.models import CrmDelivery, CrmDeliveryAttempt, CrmEndpoint, DeliveryStatus, EndpointKind
from crm.payloads import follow_up_boss_event, request_for, webhook_event
from crm.selectors import deliveries_due_ids, endpoint_next_due_id, endpoints_listening, lead_snapshot, older_pending_exists
from leads.models import Lead

logger = logging.getLogger(__name__)

# Connect, read: a CRM that has not answered in 10 s is treated as down and retried later.
TIMEOUT = (3, 10)
# How long a claim holds a delivery: well over the longest request (13 s), so a slow CRM is never
# posted to twice, and short enough that a worker that died is replaced within a sweep or two.
LEASE = dt.timedelta(seconds=60)
FIRST_RETRY = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(minutes=15)
# A CRM down for a day and a half still gets everything; past this, a person should look.
GIVE_UP_AFTER = dt.timedelta(hours=48)
RETRYABLE_STATUSES = {408, 429}
EXCERPT = 500


# --- recording -------------------------------------------------------------------------------------


def crm_deliveries_record(*, lead: Lead, milestone: str, at: dt.datetime) -> list[CrmDelivery]:
    """One delivery per endpoint of the lead's brokerage listening for the milestone, each sent
    once the caller's transaction commits. A brokerage without endpoints costs one query."""
    endpoints = endpoints_listening(lead=lead, milestone=milestone)
    if not endpoints:
        return []
    try:
        # A savepoint, so a fault here rolls back only the CRM's rows: it must never cost a caller
        # the text-back whose transaction this is.
        with transaction.atomic():
            return _deliveries_write(lead=lead, milestone=milestone, at=at, endpoints=endpoints)
    except Exception:
        logger.exception("could not record CRM deliveries of lead %s for %s", lead.pk, milestone)
        return []


def _deliveries_write(*, lead: Lead, milestone: str, at: dt.datetime, endpoints: list[CrmEndpoint]) -> list[CrmDelivery]:
    """Only the rows here: the payload is built by the worker that first claims each delivery
    (`_payload_build`), so the missed call's transaction (the text-back's path) reads nothing more."""
    deliveries = CrmDelivery.objects.bulk_create([
        CrmDelivery(endpoint=endpoint, lead=lead, milestone=milestone, payload={}, occurred_at=at, next_attempt_at=timezone.now())
        for endpoint in endpoints
    ])
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: _enqueue_send(pk))
    return deliveries


def _payload_build(delivery: CrmDelivery) -> None:
    """The lead as it stands when the delivery is first sent, kept: every retry posts the same
    bytes, and the log shows exactly what the CRM got."""
    snapshot = lead_snapshot(lead=Lead.objects.select_related("office__brokerage", "line", "assigned_agent__user").get(pk=delivery.lead_id))
    if delivery.endpoint.kind == EndpointKind.FOLLOW_UP_BOSS:
        delivery.payload = follow_up_boss_event(snapshot, milestone=delivery.milestone, at=delivery.occurred_at, endpoint=delivery.endpoint)
    else:
        delivery.payload = webhook_event(snapshot, delivery_id=delivery.pk, milestone=delivery.milestone, at=delivery.occurred_at)


def _enqueue_send(delivery_id: int) -> None:
    from crm.tasks import enqueue_delivery_send

    try:
        enqueue_delivery_send(delivery_id)
    except Exception:
        # The delivery is safe in the outbox; the sweep hands it to a worker when the broker is back.
        logger.exception("could not enqueue CRM delivery %s; the sweep will retry", delivery_id)


def crm_deliveries_retry(*, delivery_ids: list[int]) -> int:
    """A broker's "retry now" (after fixing an API key, say): pending and due at once, sent after
    the commit. Delivered ones stay delivered: a CRM must not get the same lead twice. One more
    than 48 hours old gets a single attempt: if the CRM is still failing, it fails again."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            CrmDelivery.objects.select_for_update()
            .filter(pk__in=delivery_ids, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            .values_list("pk", flat=True)
        )
        CrmDelivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, next_attempt_at=now)
        for pk in ids:
            transaction.on_commit(lambda pk=pk: _enqueue_send(pk))
    return len(ids)


def crm_deliveries_sweep() -> int:
    """Hand each endpoint's next delivery to a worker once it is due: a task that was lost, a
    retry whose wait is over, a lease whose worker died. Enqueuing one twice is harmless: only one
    worker can claim it."""
    from crm.tasks import enqueue_delivery_send

    delivery_ids = deliveries_due_ids(now=timezone.now())
    for delivery_id in delivery_ids:
        enqueue_delivery_send(delivery_id)
    return len(delivery_ids)


# --- sending ---------------------------------------------------------------------------------------


def _claim(delivery_id: int, now: dt.datetime) -> CrmDelivery | None:
    """Take the delivery for one attempt if it is pending, due and first in its endpoint's queue:
    count the attempt and lease it, in a transaction that ends before the post. A delivery whose
    endpoint was disabled meanwhile is failed instead (and returned, settled)."""
    with transaction.atomic():
        delivery = (
            CrmDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .exclude(older_pending_exists())
            .first()
        )
        if delivery is None:
            return None
        if not delivery.endpoint.enabled:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            delivery.last_error = "The endpoint was disabled before this was sent."
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return delivery
        if not delivery.payload:
            _payload_build(delivery)
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at", "payload"])
        return delivery


def _retry_after(response: requests.Response, now: dt.datetime) -> int | None:
    """Seconds the server asked us to wait (Retry-After is seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0, int((when - now).total_seconds()))


def _backoff(attempts: int) -> dt.timedelta:
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_WAIT)


def crm_delivery_send(*, delivery_id: int) -> CrmDelivery | None:
    """Post one delivery and record what came back.

    2xx is delivered; 408, 429, 5xx, timeouts and refused connections are retried with a doubling
    wait (never sooner than the CRM's Retry-After) until the delivery is 48 hours old; any other
    answer (a 4xx: a wrong API key, a body the CRM refuses) fails at once, since sending the same
    request again cannot change it. Safe to run twice for one delivery: only one claim succeeds.
    """
    delivery = _claim(delivery_id, timezone.now())
    if delivery is None:
        return None
    if delivery.status == DeliveryStatus.PENDING:
        delivery = _post(delivery)
    if delivery.status != DeliveryStatus.PENDING:
        _next_in_line_enqueue(delivery.endpoint_id)
    return delivery


def _next_in_line_enqueue(endpoint_id: int) -> None:
    """The endpoint's queue moves on as soon as its head settles, not a sweep later: after an
    outage, the backlog follows the first success at the CRM's own pace."""
    next_id = endpoint_next_due_id(endpoint_id=endpoint_id, now=timezone.now())
    if next_id is not None:
        _enqueue_send(next_id)


def _post(delivery: CrmDelivery) -> CrmDelivery:
    endpoint = delivery.endpoint
    started, at = time.monotonic(), timezone.now()
    request = request_for(
        endpoint, delivery.payload, event=delivery.milestone, delivery_id=delivery.pk, timestamp=int(at.timestamp())
    )
    response, error = None, ""
    try:
        # No redirects: requests would turn the POST into a GET; a moved endpoint must be fixed in admin.
        response = requests.post(endpoint.url, timeout=TIMEOUT, allow_redirects=False, **request)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return _attempt_record(delivery.pk, attempt=delivery.attempts, at=at, response=response, error=error, duration_ms=duration_ms)


def _attempt_record(
    delivery_id: int, *, attempt: int, at: dt.datetime, response: requests.Response | None, error: str, duration_ms: int
) -> CrmDelivery:
    now = timezone.now()
    code = response.status_code if response is not None else None
    excerpt = response.text[:EXCERPT] if response is not None else ""
    delivered = code is not None and 200 <= code < 300
    retryable = code is None or code in RETRYABLE_STATUSES or code >= 500
    retry_after = _retry_after(response, now) if response is not None and retryable else None
    with transaction.atomic():
        delivery = CrmDelivery.objects.select_for_update().get(pk=delivery_id)
        CrmDeliveryAttempt.objects.create(
            delivery=delivery, at=at, status_code=code, duration_ms=duration_ms, retry_after_seconds=retry_after,
            error=error, response_excerpt=excerpt,
        )
        # Our lease ran out and another worker took the delivery over: only a success of ours still
        # counts (it did arrive); anything else is that worker's to decide.
        if delivery.status != DeliveryStatus.PENDING or (delivery.attempts != attempt and not delivered):
            return delivery
        delivery.last_status_code = code
        if delivered:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
                DeliveryStatus.DELIVERED, now, None, ""
            )
        elif retryable:
            delivery.last_error = error or f"HTTP {code}: {excerpt}"
            if now - delivery.created_at >= GIVE_UP_AFTER:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
                delivery.last_error = f"Gave up after {delivery.attempts} attempts over 48 hours. {delivery.last_error}"
            else:
                wait = max(_backoff(delivery.attempts), dt.timedelta(seconds=retry_after or 0))
                delivery.next_attempt_at = now + wait
        else:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            delivery.last_error = f"HTTP {code}: {excerpt}"
        delivery.save()
    return delivery
