"""Seed runs, exposures and conversions of a journey for readouts (tests, the Studio bench).

`readout_seed(journey_id="welcome", version="abc123def456", arms={"key": {...}})` writes, set-based,
one contact and one completed run per entrant: `arms` maps an arm to (entrants, conversions),
`holdout` is (entrants, conversions) of held-out runs and `control_group` of runs in the global
control group, one such tuple per arm (both draw an arm, but are sent nothing).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from contacts.models import Contact
from journeys.models import GoalConversion, JourneyRun, VariantExposure


def readout_seed(
    *,
    journey_id: str,
    version: str,
    key: str = "subject",
    arms: dict[str, tuple[int, int]],
    holdout: tuple[int, int] = (0, 0),
    control_group: dict[str, tuple[int, int]] | None = None,
    prefix: str = "seed",
) -> int:
    """Write the runs; returns how many."""
    now = timezone.now()
    names = list(arms)
    groups = [(arm, index, "t", *arms[arm]) for index, arm in enumerate(names)]
    groups.append((names[0], 0, "h", *holdout))
    groups += [(arm, names.index(arm), "c", *counts) for arm, counts in (control_group or {}).items()]
    contacts, runs, exposures, conversions = [], [], [], []
    for arm, index, kind, entrants, converted in groups:
        for i in range(entrants):
            contact = Contact(
                id=uuid.uuid4(),
                user_id=f"{prefix}-{version}-{arm}-{kind}-{i}",
                email=f"{prefix}-{arm}-{kind}-{i}@example.com",
            )
            run = JourneyRun(
                id=uuid.uuid4(),
                journey_id=journey_id,
                contact=contact,
                status=JourneyRun.Status.COMPLETED,
                entered_at=now - timedelta(days=3),
                ended_at=now - timedelta(days=1),
                version=version,
                held_out=kind == "h",
                control_group=kind == "c",
            )
            contacts.append(contact)
            runs.append(run)
            exposures.append(
                VariantExposure(
                    journey_id=journey_id,
                    version=version,
                    key=key,
                    arm=arm,
                    arm_index=index,
                    run=run,
                    contact=contact,
                    exposed_at=run.entered_at,
                )
            )
            if i < converted:
                conversions.append(
                    GoalConversion(
                        run=run, journey_id=journey_id, contact=contact, converted_at=now - timedelta(days=2)
                    )
                )
    Contact.objects.bulk_create(contacts, batch_size=2000)
    JourneyRun.objects.bulk_create(runs, batch_size=2000)
    VariantExposure.objects.bulk_create(exposures, batch_size=2000)
    GoalConversion.objects.bulk_create(conversions, batch_size=2000)
    return len(runs)
