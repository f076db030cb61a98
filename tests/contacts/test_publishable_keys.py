"""Publishable keys (pk_...): events from the browser origins a key allows, and nothing else."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from contacts.models import ApiKey, Event
from contacts.services import api_key_create, origin_normalize

pytestmark = pytest.mark.django_db
SITE = "https://app.example.com"


@pytest.fixture
def pk():
    _, secret = api_key_create(name="website", scopes=["public"], allowed_origins=[SITE])
    return secret


def post(client, path, body, key, origin=SITE, **extra):
    headers = {"Authorization": f"Bearer {key}"}
    if origin:
        headers["Origin"] = origin
    return client.post(path, body, content_type="application/json", headers=headers, **extra)


def preflight(client, origin):
    return client.options(
        "/v1/events",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_a_preflight_from_an_allowed_origin_is_answered_for_it(client, pk):
    response = preflight(client, SITE)

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert response["Access-Control-Allow-Methods"] == "POST" and response["Vary"] == "Origin"


def test_a_preflight_from_an_unknown_origin_is_refused_with_a_reason(client, pk):
    response = preflight(client, "https://evil.example.net")

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["detail"].startswith("the origin https://evil.example.net is not allowed")


def test_a_revoked_keys_origins_get_no_preflight(client, pk):
    from contacts.services import api_key_revoke

    api_key_revoke(key=ApiKey.objects.get())
    assert preflight(client, SITE).status_code == 403


def test_an_event_from_an_allowed_origin_is_stored_as_a_browser_event(client, pk):
    response = post(client, "/v1/events", {"name": "pricing.viewed", "userId": "anon_1"}, pk)

    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == SITE
    assert Event.objects.get().source == Event.Source.BROWSER


def test_an_origin_another_key_allows_is_refused_for_this_key(client, pk):
    api_key_create(name="other site", scopes=["public"], allowed_origins=["https://other.example.org"])

    response = post(
        client, "/v1/events", {"name": "a.b", "userId": "u"}, pk, origin="https://other.example.org"
    )

    assert response.status_code == 403
    assert (
        "not allowed for this publishable key (it allows https://app.example.com)"
        in response.json()["detail"]
    )
    assert "Access-Control-Allow-Origin" not in response and Event.objects.count() == 0


def test_a_publishable_key_without_an_origin_is_refused(client, pk):
    response = post(client, "/v1/events", {"name": "a.b", "userId": "u"}, pk, origin=None)

    assert response.status_code == 403
    assert "no Origin header" in response.json()["detail"] and Event.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/v1/contacts"), ("get", "/v1/contacts/u"), ("get", "/v1/admin/runs"), ("post", "/v1/emails")],
)
def test_a_publishable_key_on_a_server_only_endpoint_is_a_403_that_says_so(client, pk, method, path):
    response = getattr(client, method)(
        path,
        {"userId": "u"} if method != "get" else None,
        content_type="application/json",
        headers={"Authorization": f"Bearer {pk}", "Origin": SITE},
    )

    assert response.status_code == 403
    assert response.json()["detail"].startswith("a publishable key (pk_...) may only send events")


def test_a_publishable_key_cannot_set_an_email_or_contact_properties(client, pk):
    single = post(client, "/v1/events", {"name": "a.b", "userId": "u", "userEmail": "ada@example.com"}, pk)
    batch = post(
        client,
        "/v1/events/batch",
        {
            "events": [
                {"name": "a.b", "userId": "u"},
                {"name": "a.b", "userId": "u", "contactProperties": {"x": 1}},
            ]
        },
        pk,
    )

    assert single.status_code == 403 and "cannot set a contact's email" in single.json()["detail"]
    assert batch.status_code == 207
    assert [item["status"] for item in batch.json()["results"]] == ["accepted", "rejected"]
    assert "cannot set contact properties" in batch.json()["results"][1]["errors"][0]["message"]
    assert batch["Access-Control-Allow-Origin"] == SITE
    assert Event.objects.count() == 1


def test_a_secret_key_from_a_page_gets_no_cors_answer(client, pk):
    _, secret = api_key_create(name="server", scopes=["ingest"])

    response = post(client, "/v1/events", {"name": "a.b", "userId": "u"}, secret)

    assert response.status_code == 202 and "Access-Control-Allow-Origin" not in response


def test_one_address_past_its_limit_gets_429_and_another_address_is_not_held_back(client, pk, settings):
    settings.PUBLIC_RATE_LIMIT_PER_IP = 1
    # One request a second from an address: two within one second are enough.
    for index in range(50):
        response = post(
            client, "/v1/events", {"name": "a.b", "userId": f"u{index}"}, pk, REMOTE_ADDR="198.51.100.7"
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429 and response["Retry-After"] == "1"
    assert "this address sent more than 1 requests" in response.json()["detail"]

    other = post(client, "/v1/events", {"name": "a.b", "userId": "v"}, pk, REMOTE_ADDR="198.51.100.8")
    assert other.status_code == 202


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(client, pk, settings):
    from django.test import RequestFactory

    from contacts.browser import client_address

    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5")
    assert client_address(request) == "203.0.113.5"
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(request) == "10.0.0.2"


def test_publishable_keys_are_made_with_origins_and_the_public_scope_alone():
    key, secret = api_key_create(
        name="site", scopes=["public"], allowed_origins=["HTTPS://App.Example.com:443/"]
    )
    assert secret.startswith("pk_") and key.allowed_origins == ["https://app.example.com"]
    assert str(key) == f"site (pk_{key.prefix}_…)"

    with pytest.raises(ValueError, match="the public scope stands alone"):
        api_key_create(name="x", scopes=["public", "ingest"], allowed_origins=[SITE])
    with pytest.raises(ValueError, match="needs at least one allowed origin"):
        api_key_create(name="x", scopes=["public"])
    with pytest.raises(ValueError, match="only publishable keys"):
        api_key_create(name="x", scopes=["ingest"], allowed_origins=[SITE])
    with pytest.raises(ValueError, match="leave out the path"):
        origin_normalize("https://app.example.com/pricing")
    assert origin_normalize("http://127.0.0.1:8123") == "http://127.0.0.1:8123"


def test_create_api_key_makes_a_publishable_key(capsys):
    call_command("create_api_key", "website", "--publishable", "--origin", SITE, "--quiet")

    secret = capsys.readouterr().out.strip()
    assert secret.startswith("pk_")
    assert ApiKey.objects.get().allowed_origins == [SITE]


def test_the_snippet_is_a_static_file_the_web_process_serves(client):
    response = client.get("/static/hogsend/hogsend.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"window.hogsend" in b"".join(response.streaming_content)


def test_studio_creates_a_publishable_key_with_its_origins_and_refuses_a_mixed_one(admin_client):
    from django.urls import reverse

    url = reverse("admin:contacts_apikey_add")
    created = admin_client.post(url, {"name": "site", "scopes": ["public"], "allowed_origins": f"{SITE}\n"})
    mixed = admin_client.post(url, {"name": "bad", "scopes": ["public", "ingest"], "allowed_origins": SITE})

    assert created.status_code == 200 and "pk_" in created.content.decode()
    assert ApiKey.objects.get(name="site").allowed_origins == [SITE]
    assert mixed.status_code == 200 and "the public scope alone" in mixed.content.decode()
    assert not ApiKey.objects.filter(name="bad").exists()
