"""`/v1/segments`: the list with sizes, one segment, its members in keyset pages, the export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from audiences.segments import define_segment
from audiences.services import segment_refresh
from contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro(only_segments):
    only_segments(
        define_segment("pro", name="Pro", where=lambda b: b.prop("plan").eq("pro")),
        define_segment("free", name="Free", where=lambda b: b.prop("plan").eq("free")),
    )
    Contact.objects.bulk_create(
        [
            Contact(user_id=f"u{i:02}", email=f"u{i:02}@example.com", properties={"plan": "pro"})
            for i in range(25)
        ]
        + [Contact(user_id="f1", email="f1@example.com", properties={"plan": "free"})]
    )
    segment_refresh("pro")
    segment_refresh("free")


def test_the_list_names_each_segment_with_its_size(api, pro):
    body = api.get("/v1/segments").json()
    assert [(s["id"], s["size"], s["condition"]) for s in body["items"]] == [
        ("pro", 25, "property plan eq 'pro'"),
        ("free", 1, "property plan eq 'free'"),
    ]
    assert body["items"][0]["refreshedAt"] and body["items"][0]["timeBased"] is False


def test_one_segment(api, pro):
    body = api.get("/v1/segments/pro").json()
    assert (body["id"], body["name"], body["size"]) == ("pro", "Pro", 25)


def test_an_unknown_segment_is_a_404_naming_it(api, pro):
    for path in ("/v1/segments/nope", "/v1/segments/nope/members", "/v1/segments/nope/export?format=csv"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"] and "pro" in response.json()["detail"]


def test_members_come_in_keyset_pages_with_no_repeats_and_no_gaps(api, pro):
    seen, cursor = [], None
    while True:
        url = "/v1/segments/pro/members?limit=10" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).json()
        seen += [m["userId"] for m in body["items"]]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"u{i:02}" for i in range(25)] and len(seen) == 25


def test_a_bad_cursor_is_a_422_that_says_so(api, pro):
    response = api.get("/v1/segments/pro/members?cursor=garbage")
    assert response.status_code == 422
    assert "cursor" in json.dumps(response.json())


def test_the_export_streams_csv_and_json_lines(api, pro):
    response = api.get("/v1/segments/pro/export?format=csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 25 and json.loads(rows[0]["properties"]) == {"plan": "pro"}
    response = api.get("/v1/segments/free/export?format=jsonl")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(r["user_id"], r["email"]) for r in lines] == [("f1", "f1@example.com")]


def test_an_unknown_format_is_a_422(api, pro):
    assert api.get("/v1/segments/pro/export?format=xml").status_code == 422


def test_reading_segments_needs_a_key(client, pro):
    assert client.get("/v1/segments").status_code == 401
