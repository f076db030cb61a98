"""The readout page in a real Chromium on the production-shaped server."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bench.experiments_seed import readout_seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
JOURNEY = "conversion-abandoned-checkout"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")


def test_an_operator_reads_an_experiment_per_version_with_its_chart_and_warnings(studio_browser, operator):
    readout_seed(
        journey_id=JOURNEY,
        version="aaaaaaaaaaaa",
        key="reminder",
        arms={"plain": (400, 60), "discount": (400, 80)},
        holdout=(200, 20),
        control_group={"plain": (30, 3), "discount": (20, 2)},
    )
    readout_seed(
        journey_id=JOURNEY,
        version="bbbbbbbbbbbb",
        key="reminder",
        arms={"plain": (30, 3), "discount": (30, 6)},
        holdout=(10, 1),
        prefix="early",
    )
    studio = studio_browser
    studio.login()
    page = studio.page

    studio.visit(reverse("admin:studio_journey", args=[JOURNEY]), shot="studio-journey-checkout.png")
    page.click("#readout-link")
    page.wait_for_selector("svg.readout-chart")
    studio.check(shot="studio-readout-all-versions.png")
    assert page.locator("#readout-overall tbody tr").first.inner_text().split("\t")[:3] == [
        "treated",
        "860",
        "149",
    ]

    page.select_option("#version", "aaaaaaaaaaaa")
    page.click("#readout-version input[type=submit]")
    page.wait_for_selector("svg.readout-chart")
    studio.check(shot="studio-readout.png")
    rows = {
        tuple(cells[:2]): cells
        for cells in (r.inner_text().split("\t") for r in page.locator("#readout-comparisons tbody tr").all())
    }
    assert rows[("discount", "plain")][2:5] == ["+5.0 pp", "-0.3 pp to +10.3 pp", "0.0627"]
    assert "no clear difference" in rows[("discount", "plain")][5]
    assert "a difference" in rows[("discount", "holdout")][5]
    overall = [r.inner_text().split("\t") for r in page.locator("#readout-overall tbody tr").all()]
    assert overall == [
        ["treated", "800", "140", "17.5%"],
        ["holdout", "200", "20", "10.0%"],
        ["control group", "50", "5", "10.0%"],
    ]
    assert page.locator("svg.readout-chart rect").count() == 4  # plain, discount, holdout, control group
    assert page.locator("#readout-too-small").count() == 0

    page.select_option("#version", "bbbbbbbbbbbb")
    page.click("#readout-version input[type=submit]")
    page.wait_for_selector("#readout-comparisons")
    studio.check(shot="studio-readout-small-sample.png")
    assert "too few conversions to say" in page.locator("#readout-comparisons").inner_text()
    assert "too small to say for 4 of 4" in page.locator("#readout-too-small").inner_text()
