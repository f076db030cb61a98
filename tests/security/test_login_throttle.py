"""Studio login attempts are throttled per account and per address."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture
def operators(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, not security
    User = get_user_model()
    return [
        User.objects.create_user(name, password=PASSWORD, is_staff=True, is_superuser=True)
        for name in ("operator", "other", "third")
    ]


def login(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_fifty_wrong_passwords_then_the_right_one_does_not_log_in(client, operators):
    for _ in range(50):
        login(client, "operator", "guess", address="203.0.113.7")

    response = login(client, "operator", PASSWORD, address="203.0.113.7")

    assert response.status_code == 429
    assert not logged_in(client)


def test_an_account_is_locked_whichever_address_the_guesses_come_from(client, operators):
    for n in range(5):
        login(client, "operator", "guess", address=f"198.51.100.{n}")

    assert login(client, "operator", PASSWORD, address="192.0.2.99").status_code == 429
    assert not logged_in(client)


def test_an_address_guessing_across_accounts_is_locked(client, operators):
    for n in range(5):
        login(client, f"nobody{n}", "guess", address="203.0.113.9")

    assert login(client, "other", PASSWORD, address="203.0.113.9").status_code == 429
    assert not logged_in(client)


def test_a_few_typos_do_not_lock_anyone_out_and_a_success_resets_the_count(client, operators):
    for _ in range(4):
        login(client, "third", "typo")
    assert login(client, "third", PASSWORD).status_code == 302
    assert logged_in(client)
    client.logout()

    for _ in range(4):
        login(client, "third", "typo")
    assert login(client, "third", PASSWORD).status_code == 302
