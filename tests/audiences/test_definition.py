"""Segments are defined in code and refused at definition when they cannot be compiled."""

from __future__ import annotations

import pytest

from audiences.segments import (
    SegmentDefinitionError,
    SegmentRegistry,
    UnknownSegment,
    define_segment,
    load_segment_modules,
    registry,
    segment_get,
)
from journeys.durations import days


def test_the_modules_the_settings_name_are_loaded(only_segments, settings):
    only_segments()
    settings.HOGSEND_SEGMENT_MODULES = ["audiences.shipped"]
    load_segment_modules()
    assert {"pro-plan", "power-users", "never-purchased", "dormant", "pro-power-users"} <= {
        s.id for s in registry.all()
    }
    assert segment_get("pro-plan").name == "On the Pro plan"


def test_an_unknown_segment_is_a_lookup_error_naming_it():
    with pytest.raises(UnknownSegment) as raised:
        segment_get("no-such-segment")
    assert isinstance(raised.value, LookupError)
    assert "no-such-segment" in str(raised.value)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        (lambda b: b.event("feature.used").at_least(-1), "whole number"),
        (lambda b: b.event("feature.used").at_least(2.5), "whole number"),
        (lambda b: b.event("").ever(), "event name"),
        (lambda b: b.event("session.started").last_more_than(3), "positive duration"),
        (lambda b: b.prop("plan").gt(["pro"]), "plan gt"),
        (lambda b: b.prop("plan").frobnicate("x"), "frobnicate"),
        (lambda b: b.accepts("no-such-category"), "no-such-category"),
        (lambda b: b.event("feature.used", where=lambda e: e.prop("n").eq({"a": 1})).ever(), "feature.used"),
        (lambda b: 42, "not a segment condition"),
        ({"property": "plan"}, "operator"),
    ],
)
def test_a_condition_that_cannot_be_compiled_is_refused_naming_it(where, named):
    with pytest.raises(SegmentDefinitionError) as raised:
        define_segment("broken", name="Broken", where=where)
    assert "broken" in str(raised.value) and named in str(raised.value)


def test_a_bad_id_is_refused():
    with pytest.raises(SegmentDefinitionError, match="lower-case"):
        define_segment("Not OK", name="x", where=lambda b: b.subscribed())


def test_a_reference_to_a_segment_no_module_defines_is_refused():
    own = SegmentRegistry()
    with pytest.raises(SegmentDefinitionError, match="'ghost', which no module defines"):
        own.register(define_segment("a", name="A", where=lambda b: b.in_segment("ghost")))


def test_segments_that_depend_on_each_other_in_a_cycle_are_refused():
    own = SegmentRegistry()
    with pytest.raises(SegmentDefinitionError, match="cycle: a -> b -> a"):
        own.register(
            define_segment("a", name="A", where=lambda b: b.in_segment("b")),
            define_segment("b", name="B", where=lambda b: b.in_segment("a")),
        )


def test_two_segments_with_one_id_are_refused():
    own = SegmentRegistry()
    own.register(define_segment("a", name="A", where=lambda b: b.subscribed()))
    with pytest.raises(SegmentDefinitionError, match="share the id 'a'"):
        own.register(define_segment("a", name="A again", where=lambda b: b.subscribed()))


def test_dependency_levels_order_evaluation():
    own = SegmentRegistry()
    own.register(
        define_segment("top", name="T", where=lambda b: b.in_segment("mid")),
        define_segment("mid", name="M", where=lambda b: b.in_segment("base") & b.subscribed()),
        define_segment("base", name="B", where=lambda b: b.prop("plan").eq("pro")),
    )
    assert [s.id for s in own.in_dependency_order()] == ["base", "mid", "top"]


def test_references_say_what_ingest_must_recheck_and_whether_time_moves_it():
    s = define_segment(
        "mixed",
        name="Mixed",
        where=lambda b: b.prop("billing.plan").eq("pro")
        & (b.event("feature.used").at_least(3, within=days(7)) | b.event("checkout.completed").never()),
    )
    assert s.references.event_names == {"feature.used", "checkout.completed"}
    assert s.references.property_keys == {"billing.plan", "billing"}
    assert s.time_based
    assert not define_segment("p", name="P", where=lambda b: b.event("x").never()).time_based
    assert s.describe() == (
        "property billing.plan eq 'pro' and (did feature.used at least 3 times in the last 7d "
        "or never did checkout.completed)"
    )


def test_plain_data_and_lists_are_conditions_too():
    s = define_segment(
        "data",
        name="Data",
        where=[{"property": "plan", "operator": "eq", "value": "pro"}, lambda b: b.subscribed()],
    )
    assert s.describe() == "property plan eq 'pro' and subscribed"


def test_loading_a_module_twice_is_harmless(only_segments):
    only_segments()
    load_segment_modules(["audiences.shipped"])
    before = {s.id for s in registry.all()}
    load_segment_modules(["audiences.shipped"])  # the same objects: registering again is harmless
    assert {s.id for s in registry.all()} == before
