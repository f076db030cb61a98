"""`/v1/admin`: the operator's actions over HTTP, admin scope only. Each app keeps its own router."""

from __future__ import annotations

from ninja import Router

from broadcasts.api import router as broadcasts_admin
from contacts.admin_api import router as contacts_admin
from hogsend.admin_api_destinations import router as destinations_admin
from journeys.admin_api import router as journeys_admin

router = Router()
router.add_router("", journeys_admin)
router.add_router("", contacts_admin)
router.add_router("", destinations_admin)
router.add_router("", broadcasts_admin)
