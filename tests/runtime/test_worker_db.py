"""The journey worker's database access: a connection that died between steps is replaced, not
turned into a failed journey step."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection, connections

from contacts.models import Contact
from journeys.runtime.backend import _with_fresh_connection

pytestmark = pytest.mark.django_db(transaction=True)


def kill_backend_of_this_thread() -> None:
    """Terminate this thread's server connection from another one, as a database restart would."""
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as error:  # surfaced to the test below
            out["error"] = error
        finally:
            connections.close_all()

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    return out


def test_a_unit_of_work_survives_its_connection_being_killed_between_units():
    Contact.objects.create(user_id="u1")

    def scenario():
        _with_fresh_connection(lambda: Contact.objects.count(), {})
        kill_backend_of_this_thread()
        return _with_fresh_connection(lambda: Contact.objects.count(), {})

    out = in_thread(scenario)
    assert out.get("value") == 1, out.get("error")


def test_a_failure_after_a_statement_ran_is_raised_not_retried():
    calls = []

    def unit():
        calls.append(1)
        Contact.objects.count()
        kill_backend_of_this_thread()
        return Contact.objects.count()

    out = in_thread(lambda: _with_fresh_connection(unit, {}))
    assert "error" in out
    assert len(calls) == 1
