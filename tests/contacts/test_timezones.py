"""A contact's time zone: the `timezone` field or contact property, checked against the tz database."""

from __future__ import annotations

import pytest

from contacts.ingest import IngestError, event_ingest
from contacts.models import Contact

pytestmark = pytest.mark.django_db


def test_an_event_sets_the_contacts_time_zone_from_its_timezone_field(api):
    response = api.post("/v1/events", {"name": "user.created", "userId": "u1", "timezone": "Europe/Berlin"})

    assert response.status_code == 202
    contact = Contact.objects.get(user_id="u1")
    assert contact.timezone == "Europe/Berlin"
    assert contact.properties["timezone"] == "Europe/Berlin"


def test_a_contact_without_a_zone_is_in_the_default_one(api, settings):
    settings.HOGSEND_DEFAULT_TIMEZONE = "America/New_York"
    api.post("/v1/events", {"name": "user.created", "userId": "u1"})

    assert Contact.objects.get(user_id="u1").timezone == "America/New_York"


def test_an_unknown_zone_in_an_event_is_a_422_naming_the_field_and_a_valid_value(api):
    response = api.post("/v1/events", {"name": "user.created", "userId": "u1", "timezone": "Mars/Olympus"})

    assert response.status_code == 422
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["timezone"]
    assert "'Mars/Olympus' is not a known time zone" in body["detail"]
    assert "Europe/Berlin" in body["detail"]  # what a valid value looks like
    assert not Contact.objects.exists()


def test_an_unknown_zone_as_a_contact_property_is_a_422_too(api):
    response = api.post(
        "/v1/events", {"name": "user.created", "userId": "u1", "contactProperties": {"timezone": "CEST+2"}}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contactProperties"
    assert "timezone: 'CEST+2' is not a known time zone" in response.json()["detail"]


def test_a_bad_zone_in_a_batch_rejects_that_item_alone(api):
    response = api.post(
        "/v1/events/batch",
        {
            "events": [
                {"name": "a", "userId": "u1", "timezone": "Asia/Tokyo"},
                {"name": "a", "userId": "u2", "timezone": "Nowhere/Special"},
            ]
        },
    )

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert Contact.objects.get(user_id="u1").timezone == "Asia/Tokyo"
    assert not Contact.objects.filter(user_id="u2").exists()


def test_the_contacts_api_takes_and_shows_the_zone(api):
    created = api.put("/v1/contacts", {"userId": "u1", "timezone": "America/New_York"})
    refused = api.put("/v1/contacts", {"userId": "u1", "properties": {"timezone": "Eastern"}})

    assert created.status_code == 201
    assert created.json()["timezone"] == "America/New_York"
    assert refused.status_code == 422
    assert "timezone" in refused.json()["detail"]
    assert Contact.objects.get(user_id="u1").timezone == "America/New_York"


def test_ingest_from_code_refuses_an_unknown_zone_with_the_field_named(db):
    with pytest.raises(
        IngestError, match=r"contactProperties.timezone: 'Moon/Base' is not a known time zone"
    ):
        event_ingest(name="a", user_id="u1", contact_properties={"timezone": "Moon/Base"})
