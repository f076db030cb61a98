from __future__ import annotations

from journeys.durations import days, hours

ADA = "ada@example.com"


def test_welcome_is_sent_at_once_then_the_run_sleeps_two_days(journey_harness, mailoutbox):
    journey_harness.start("activation-welcome", user_id="ada", email=ADA, properties={"first_name": "Ada"})

    assert journey_harness.templates_sent_to(ADA) == ["activation/welcome"]
    assert mailoutbox[0].subject == "Welcome to Hogsend — let's get you set up"
    assert "Welcome, Ada!" in mailoutbox[0].body
    run = journey_harness.run("activation-welcome", "ada")
    assert (run.status, run.current_node) == ("waiting", "post-welcome")


def test_a_user_who_used_the_feature_gets_the_advanced_email(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email=ADA)
    journey_harness.advance(hours(20))
    journey_harness.emit("feature.used", user_id="ada")
    journey_harness.advance(days(2))

    assert journey_harness.templates_sent_to(ADA) == ["activation/welcome", "activation/advanced"]
    assert journey_harness.run("activation-welcome", "ada").current_node == "branch:advanced"


def test_a_user_who_did_not_gets_the_nudge_after_two_days(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email=ADA)
    journey_harness.advance(hours(47))
    assert journey_harness.templates_sent_to(ADA) == ["activation/welcome"]

    journey_harness.advance(hours(1))
    assert journey_harness.templates_sent_to(ADA) == ["activation/welcome", "activation/nudge"]
    assert journey_harness.run("activation-welcome", "ada").status == "completed"


def test_user_deleted_exits_the_series(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email=ADA)
    journey_harness.emit("user.deleted", user_id="ada")
    journey_harness.advance(days(3))

    assert journey_harness.run("activation-welcome", "ada").status == "exited"
    assert journey_harness.templates_sent_to(ADA) == ["activation/welcome"]


def test_it_is_entered_only_once(journey_harness):
    journey_harness.start("activation-welcome", user_id="ada", email=ADA)
    journey_harness.advance(days(3))
    journey_harness.start("activation-welcome", user_id="ada", email=ADA)

    assert journey_harness.skip_reasons("activation-welcome", "ada") == ["already_entered_once"]
    assert journey_harness.templates_sent_to(ADA).count("activation/welcome") == 1


def test_a_week_of_journey_time_runs_in_milliseconds(journey_harness):
    import time

    began = time.perf_counter()
    for i in range(10):
        journey_harness.start("activation-welcome", user_id=f"u{i}", email=f"u{i}@example.com")
    journey_harness.advance(days(7))
    elapsed = time.perf_counter() - began

    assert all(journey_harness.run("activation-welcome", f"u{i}").status == "completed" for i in range(10))
    print(f"10 welcome series over 7 virtual days took {elapsed * 1000:.0f} ms")
