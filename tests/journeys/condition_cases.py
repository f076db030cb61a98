"""One table of condition cases: what each condition means for each set of properties.

Run through the Python matcher (tests/journeys/test_conditions.py), a CEL interpreter over the
exact expression the engine gets (same file), and the real engine's live wait
(tests/e2e/test_conditions_engine.py).
"""

from __future__ import annotations

from journeys.conditions import prop

# (condition, properties, expected)
CASES = [
    # type-strict equality
    (prop("vip").eq(True), {"vip": True}, True),
    (prop("vip").eq(True), {"vip": 1}, False),
    (prop("vip").eq(True), {"vip": "true"}, False),
    (prop("vip").eq(1), {"vip": True}, False),
    (prop("n").eq(1), {"n": 1}, True),
    (prop("n").eq(1), {"n": 1.0}, True),
    (prop("n").eq(1), {"n": "1"}, False),
    (prop("n").eq("1"), {"n": 1}, False),
    (prop("plan").eq("pro"), {"plan": "pro"}, True),
    (prop("plan").eq("pro"), {"plan": "Pro"}, False),
    (prop("plan").eq("pro"), {"plan": ["pro"]}, False),
    (prop("vip").neq(True), {"vip": 1}, True),
    (prop("vip").neq(True), {"vip": True}, False),
    (prop("plan").neq("pro"), {"plan": "free"}, True),
    # missing and null are the same
    (prop("plan").eq("pro"), {}, False),
    (prop("plan").eq("pro"), {"plan": None}, False),
    (prop("plan").neq("pro"), {}, True),
    (prop("plan").neq("pro"), {"plan": None}, True),
    (prop("coupon").exists(), {"coupon": "X"}, True),
    (prop("coupon").exists(), {"coupon": ""}, True),
    (prop("coupon").exists(), {"coupon": False}, True),
    (prop("coupon").exists(), {"coupon": None}, False),
    (prop("coupon").exists(), {}, False),
    (prop("coupon").not_exists(), {}, True),
    (prop("coupon").not_exists(), {"coupon": None}, True),
    (prop("coupon").not_exists(), {"coupon": 0}, False),
    (prop("coupon").eq(None), {"coupon": None}, True),
    (prop("coupon").eq(None), {}, True),
    (prop("coupon").eq(None), {"coupon": 0}, False),
    (prop("coupon").neq(None), {"coupon": 0}, True),
    (prop("seats").gt(10), {}, False),
    (prop("seats").gt(10), {"seats": None}, False),
    # orderings: numbers with numbers, strings with strings
    (prop("seats").gt(10), {"seats": 11}, True),
    (prop("seats").gt(10), {"seats": 10}, False),
    (prop("seats").gte(10), {"seats": 10}, True),
    (prop("seats").gte(10), {"seats": 10.0}, True),
    (prop("seats").lt(10), {"seats": 9.5}, True),
    (prop("seats").lte(10), {"seats": 11}, False),
    (prop("seats").gt(10), {"seats": "11"}, False),
    (prop("seats").gt(0), {"seats": True}, False),
    (prop("seats").lt(10), {"seats": [1]}, False),
    (prop("tier").gt("b"), {"tier": "c"}, True),
    (prop("tier").gt("b"), {"tier": "a"}, False),
    (prop("tier").gt("b"), {"tier": 5}, False),
    (prop("score").gte(-1.5), {"score": -1.5}, True),
    # dotted paths
    (prop("company.size").gte(100), {"company": {"size": 250}}, True),
    (prop("company.size").gte(100), {"company": {"size": 50}}, False),
    (prop("company.size").gte(100), {"company": 250}, False),
    (prop("company.size").exists(), {"company": {}}, False),
    (prop("company.size").exists(), {"company": None}, False),
    (prop("company.size").not_exists(), {"company": "big"}, True),
    (prop("a.b.c").eq("x"), {"a": {"b": {"c": "x"}}}, True),
    (prop("a.b").eq("literal"), {"a.b": "literal", "a": {"b": "nested"}}, True),
    (prop("a.b").eq("nested"), {"a.b": "literal", "a": {"b": "nested"}}, False),
    (prop("a.b").eq("nested"), {"a": {"b": "nested"}}, True),
    # contains on strings and lists
    (prop("url").contains("pricing"), {"url": "/pricing/team"}, True),
    (prop("url").contains("pricing"), {"url": "/docs"}, False),
    (prop("url").contains(""), {"url": "/docs"}, True),
    (prop("tags").contains("vip"), {"tags": ["vip", "beta"]}, True),
    (prop("tags").contains("vi"), {"tags": ["vip", "beta"]}, False),
    (prop("tags").contains(1), {"tags": [True, "1"]}, False),
    (prop("tags").contains(1), {"tags": [2, 1.0]}, True),
    (prop("tags").contains(True), {"tags": [1]}, False),
    (prop("tags").contains("vip"), {"tags": {"vip": True}}, False),
    (prop("tags").contains("vip"), {"tags": None}, False),
    (prop("tags").contains(5), {"tags": "555"}, False),
    (prop("tags").contains(None), {"tags": [None]}, True),
    (prop("tags").contains("x"), {"tags": [["x"]]}, False),
]
