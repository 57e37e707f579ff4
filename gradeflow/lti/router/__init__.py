"""Every LTI route: tool registration and launch claims (/v1, API keys), the token endpoint and the services (/lti)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.lti.router import ags, claims, line_items, nrps, token, tools

router = APIRouter()
for module in (tools, claims, line_items, token, ags, nrps):
    router.include_router(module.router)
