"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.api import errors, webhook_docs
from services.api.lifespan import lifespan
from services.api.limits import BodyLimit, HeadLimits
from services.api.observe import Observe
from services.api.request_id import RequestId
from services.api.routers import (
    anonymity,
    assessments,
    attempts,
    audit,
    certificates,
    certifications,
    courses,
    dashboard,
    diplomas,
    documents,
    enrollments,
    feedback,
    grades,
    grading,
    groups,
    imports,
    late_policy,
    mailings,
    marking,
    me,
    moderation,
    organization,
    overrides,
    policy,
    publications,
    readside,
    reports,
    reviews,
    scores,
    sessions,
    staff,
    system,
    webhooks,
)
from shared import logs
from shared.settings import Settings, get_settings

DESCRIPTION = """
Gradeflow records learners' scores, computes grades under a course's grading policy, publishes
results and builds reports. Authenticate with `Authorization: Bearer <API key>` (`gfk_...`) or a
user token minted by your LMS. Every error is `application/problem+json` (RFC 9457); validation
errors name each bad field by JSON pointer.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPIOffline(
        title="Gradeflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        favicon_url="data:,",
    )
    app.state.settings = settings or get_settings()
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=app.state.settings.limits.max_body_bytes)
    app.add_middleware(HeadLimits, max_header_bytes=app.state.settings.limits.max_header_bytes)
    app.add_middleware(Observe, max_in_flight=app.state.settings.max_in_flight)
    app.add_middleware(RequestId)
    app.include_router(system.router)
    for module in (
        organization,
        courses,
        enrollments,
        groups,
        sessions,
        certificates,
        certifications,
        diplomas,
        assessments,
        anonymity,
        overrides,
        attempts,
        scores,
        marking,
        moderation,
        feedback,
        imports,
        grading,
        policy,
        late_policy,
        grades,
        publications,
        mailings,
        reviews,
        reports,
        readside,
        dashboard,
        me,
        documents,
        webhooks,
        staff,
        audit,
    ):
        app.include_router(module.router, responses=errors.COMMON_RESPONSES)
    webhook_docs.install(app)
    return app


def serve() -> FastAPI:
    """The app as `gradeflow api` serves it (in each uvicorn worker process): logs as JSON lines."""
    settings = get_settings()
    logs.configure(settings.log_level)
    return create_app(settings)
