"""A broadcast to a segment mails its members as the segment holds them when the broadcast starts."""

from __future__ import annotations

import pytest

from audiences.segments import define_segment
from audiences.services import segment_refresh
from broadcasts.models import Broadcast
from broadcasts.send import broadcast_drain
from broadcasts.services import BroadcastError, broadcast_create
from broadcasts.templates import ANNOUNCEMENT
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS, recipients_of

pytestmark = pytest.mark.django_db


def test_a_broadcast_to_a_segment_mails_each_member_once(define, people, smtp_server):
    define(define_segment("pro-users", name="Pro users", where=lambda b: b.prop("plan").eq("pro")))
    pro = people(2, properties={"plan": "pro"})
    people(2, properties={"plan": "free"})
    segment_refresh("pro-users")

    broadcast = broadcast_create(
        name="To pro", template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, segment_id="pro-users", rate=0
    )
    assert broadcast.recipients_total == 2
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    assert recipients_of(smtp_server) == sorted(c.email for c in pro)
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.COMPLETED


def test_an_unknown_segment_is_refused_naming_the_defined_ones(define):
    define(define_segment("pro-users", name="Pro users", where=lambda b: b.prop("plan").eq("pro")))
    with pytest.raises(BroadcastError, match=r"unknown segment 'trial-pro'; defined: .*pro-users") as caught:
        broadcast_create(name="x", template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, segment_id="trial-pro")
    assert caught.value.field == "segment"
