"""A full re-evaluation: set-based over every contact, applying only the difference."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import SegmentMembership
from audiences.segments import UnknownSegment, define_segment
from audiences.selectors import segment_contacts
from audiences.services import segment_refresh
from contacts.ingest import event_ingest
from contacts.models import Contact, Event, Suppression
from journeys.durations import days

pytestmark = pytest.mark.django_db


def contact(user_id: str, **properties) -> Contact:
    return Contact.objects.create(user_id=user_id, email=f"{user_id}@example.com", properties=properties)


def events(c: Contact, name: str, *ages_in_days: float, **properties) -> None:
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(contact=c, name=name, occurred_at=now - timedelta(days=age), properties=properties,
                  dispatch_state="skipped")
            for age in ages_in_days
        ]
    )  # fmt: skip


def members(segment_id: str) -> set[str]:
    return set(segment_contacts(segment_id).values_list("user_id", flat=True))


def test_event_history_counts_within_a_window(only_segments):
    only_segments(
        define_segment(
            "busy", name="Busy", where=lambda b: b.event("feature.used").at_least(3, within=days(7))
        )
    )
    events(ada := contact("ada"), "feature.used", 1, 2, 3)
    events(bob := contact("bob"), "feature.used", 1, 2, 10)  # one is too old
    events(contact("cy"), "other.thing", 1, 2, 3)
    events(ada, "feature.used", 4, 5)
    del bob
    result = segment_refresh("busy")
    assert members("busy") == {"ada"}
    assert (result.entered, result.exited, result.size) == (1, 0, 1)


def test_never_and_last_more_than(only_segments):
    only_segments(
        define_segment("never-bought", name="N", where=lambda b: b.event("checkout.completed").never()),
        define_segment(
            "dormant", name="D", where=lambda b: b.event("session.started").last_more_than(days(14))
        ),
    )
    events(contact("ada"), "session.started", 20, 30)
    events(bob := contact("bob"), "session.started", 20, 1)
    events(bob, "checkout.completed", 3)
    contact("cy")  # never started a session: not "dormant", but never bought
    segment_refresh("never-bought")
    segment_refresh("dormant")
    assert members("never-bought") == {"ada", "cy"}
    assert members("dormant") == {"ada"}


def test_event_property_filters(only_segments):
    only_segments(
        define_segment(
            "exporters",
            name="E",
            where=lambda b: b.event("feature.used", where=lambda e: e.prop("feature").eq("export")).at_least(
                2
            ),
        )
    )
    events(contact("ada"), "feature.used", 1, 2, feature="export")
    events(contact("bob"), "feature.used", 1, 2, feature="import")
    segment_refresh("exporters")
    assert members("exporters") == {"ada"}


def test_consent_properties_and_other_segments(only_segments):
    only_segments(
        define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")),
        define_segment(
            "reachable-pro",
            name="Reachable pro",
            where=lambda b: b.in_segment("pro") & b.subscribed() & b.accepts("tips") & ~b.suppressed(),
        ),
    )
    ada = contact("ada", plan="pro")
    ada.category_opt_ins = ["tips"]
    ada.save()
    bob = contact("bob", plan="pro")  # tips is off by default: bob never opted in
    cy = contact("cy", plan="pro")
    cy.category_opt_ins, cy.unsubscribed_at = ["tips"], timezone.now()
    cy.save()
    dee = contact("dee", plan="pro")
    dee.category_opt_ins = ["tips"]
    dee.save()
    Suppression.objects.create(email="DEE@example.com", reason="manual")
    contact("eve", plan="free")
    del bob
    segment_refresh("pro")
    segment_refresh("reachable-pro")
    assert members("pro") == {"ada", "bob", "cy", "dee"}
    assert members("reachable-pro") == {"ada"}


def test_a_first_population_announces_no_one_and_later_changes_are_announced(only_segments):
    only_segments(define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")))
    contact("ada", plan="pro")
    bob = contact("bob", plan="free")
    first = segment_refresh("pro")
    assert first.entered == 1 and not first.announced
    assert not Event.objects.filter(name__startswith="segment.").exists()
    Contact.objects.filter(pk=bob.pk).update(properties={"plan": "pro"})
    Contact.objects.filter(user_id="ada").update(properties={"plan": "free"})
    second = segment_refresh("pro")
    assert (second.entered, second.exited) == (1, 1)
    announced = {(e.contact.user_id, e.name, e.properties["segment_id"])
                 for e in Event.objects.filter(name__startswith="segment.")}  # fmt: skip
    assert announced == {("bob", "segment.entered", "pro"), ("ada", "segment.exited", "pro")}
    third = segment_refresh("pro")
    assert (third.entered, third.exited, third.candidates) == (0, 0, 0)


def test_erased_contacts_are_in_no_segment(only_segments):
    only_segments(define_segment("everyone", name="All", where=lambda b: b.prop("plan").exists()))
    contact("ada", plan="pro")
    segment_refresh("everyone")
    ada = Contact.objects.get(user_id="ada")
    from contacts.services import contact_erase

    contact_erase(contact=ada)
    assert not SegmentMembership.objects.filter(contact=ada).exists()
    segment_refresh("everyone")
    assert members("everyone") == set()


def test_refreshing_an_unknown_segment_raises():
    with pytest.raises(UnknownSegment):
        segment_refresh("nope")


def test_ingest_keeps_membership_live(only_segments):
    only_segments(
        define_segment("busy", name="Busy", where=lambda b: b.event("feature.used").at_least(2)),
        define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")),
    )
    segment_refresh("busy")
    segment_refresh("pro")
    event_ingest(name="feature.used", user_id="ada")
    assert members("busy") == set()
    event_ingest(name="feature.used", user_id="ada", contact_properties={"plan": "pro"})
    assert members("busy") == {"ada"} and members("pro") == {"ada"}
    event_ingest(name="plan.changed", user_id="ada", contact_properties={"plan": "free"})
    assert members("pro") == set()
    names = list(
        Event.objects.filter(name__startswith="segment.").order_by("received_at", "name")
        .values_list("name", "properties__segment_id")
    )  # fmt: skip
    assert sorted(names) == [
        ("segment.entered", "busy"),
        ("segment.entered", "pro"),
        ("segment.exited", "pro"),
    ]


def test_the_scheduled_refresh_moves_time_based_segments_as_time_passes(only_segments):
    only_segments(
        define_segment(
            "dormant", name="D", where=lambda b: b.event("session.started").last_more_than(days(14))
        ),
        define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")),
    )
    events(contact("ada"), "session.started", 10)
    from audiences.services import segments_refresh_due

    first = {r.segment_id for r in segments_refresh_due()}
    assert first == {"dormant", "pro"}  # never populated: both
    assert members("dormant") == set()
    later = segments_refresh_due(now=timezone.now() + timedelta(days=5))
    assert [r.segment_id for r in later] == ["dormant"]  # only what time can change
    assert members("dormant") == {"ada"}
    assert [e.name for e in Event.objects.filter(name__startswith="segment.")] == ["segment.entered"]


def test_the_hourly_reconcile_repairs_what_no_hook_reported_and_snapshots_sizes(only_segments):
    only_segments(define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")))
    segment_refresh("pro")
    contact("ada", plan="pro")  # written behind ingest's back, as an import does
    from audiences.models import SegmentSize
    from audiences.tasks import segments_reconcile

    assert segments_reconcile() == {"pro": 1}
    assert members("pro") == {"ada"}
    assert SegmentSize.objects.filter(segment_id="pro").latest("taken_at").size == 1


def test_entering_and_leaving_go_to_destinations_as_lifecycle_events(only_segments):
    import jsonschema_rs

    from integrations.catalog import CATALOG
    from integrations.models import Delivery, Destination

    Destination.objects.create(name="all", kind="slack", url="http://127.0.0.1:9/x")
    only_segments(define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")))
    segment_refresh("pro")
    event_ingest(name="plan.changed", user_id="ada", contact_properties={"plan": "pro"})
    event_ingest(name="plan.changed", user_id="ada", contact_properties={"plan": "free"})
    rows = Delivery.objects.filter(event_type__startswith="segment.").order_by("created_at")
    assert [(d.event_type, d.payload["data"]["segmentId"], d.payload["data"]["userId"]) for d in rows] == [
        ("segment.entered", "pro", "ada"),
        ("segment.exited", "pro", "ada"),
    ]
    for d in rows:
        jsonschema_rs.validate(CATALOG[d.event_type].schema, d.payload["data"])
