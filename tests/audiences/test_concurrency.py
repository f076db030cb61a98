"""Concurrent events for one contact, on real threads and PostgreSQL: no lost and no duplicated
segment.entered / segment.exited."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from audiences.models import SegmentMembership
from audiences.segments import define_segment
from audiences.services import segment_refresh
from contacts.ingest import event_ingest
from contacts.models import Contact, Event

pytestmark = pytest.mark.django_db(transaction=True)


def together(workers: int, work) -> None:
    """Run `work(i)` on `workers` threads released at once; re-raise the first failure."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as error:  # reported by the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def segment_events(user_id: str, segment_id: str) -> list[str]:
    return list(
        Event.objects.filter(
            contact__user_id=user_id, name__startswith="segment.", properties__segment_id=segment_id
        )
        .order_by("occurred_at")
        .values_list("name", flat=True)
    )


def test_events_racing_past_a_threshold_enter_the_contact_exactly_once(only_segments):
    only_segments(define_segment("busy", name="Busy", where=lambda b: b.event("feature.used").at_least(4)))
    Contact.objects.create(user_id="ada")
    segment_refresh("busy")

    together(8, lambda i: event_ingest(name="feature.used", user_id="ada", properties={"i": i}))

    assert segment_events("ada", "busy") == ["segment.entered"]
    assert SegmentMembership.objects.filter(segment_id="busy", contact__user_id="ada").count() == 1


def test_racing_property_changes_alternate_enter_and_exit_and_end_where_the_contact_is(only_segments):
    only_segments(define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")))
    Contact.objects.create(user_id="ada", properties={"plan": "free"})
    segment_refresh("pro")
    rng = random.Random(7)
    plans = [[rng.choice(["pro", "free"]) for _ in range(12)] for _ in range(4)]

    def work(i: int) -> None:
        for plan in plans[i]:
            event_ingest(name="plan.changed", user_id="ada", contact_properties={"plan": plan})

    together(4, work)

    names = segment_events("ada", "pro")
    assert names, "the contact changed plan; some change must have been announced"
    assert all(n == ("segment.entered" if k % 2 == 0 else "segment.exited") for k, n in enumerate(names)), (
        names
    )
    member = SegmentMembership.objects.filter(segment_id="pro", contact__user_id="ada").exists()
    assert member == (Contact.objects.get(user_id="ada").properties["plan"] == "pro")
    assert member == (names[-1] == "segment.entered")


def test_a_full_refresh_racing_ingest_never_undoes_a_live_change(only_segments):
    only_segments(define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")))
    Contact.objects.bulk_create(
        [Contact(user_id=f"u{i}", properties={"plan": "pro" if i < 20 else "free"}) for i in range(40)]
    )
    segment_refresh("pro")  # the first population: silent

    def work(i: int) -> None:
        if i == 0:
            for _ in range(5):
                segment_refresh("pro")
        else:
            for k in range(40):
                if k % 3 == i - 1:
                    flipped = "free" if k < 20 else "pro"
                    event_ingest(name="plan.changed", user_id=f"u{k}", contact_properties={"plan": flipped})

    together(4, work)
    segment_refresh("pro")

    for k in range(40):
        assert segment_events(f"u{k}", "pro") == (["segment.exited"] if k < 20 else ["segment.entered"]), k
    assert set(
        SegmentMembership.objects.filter(segment_id="pro").values_list("contact__user_id", flat=True)
    ) == {f"u{k}" for k in range(20, 40)}
