"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from gradeflow.access.router import organization, staff
from gradeflow.anonymity import router as anonymity
from gradeflow.api import webhook_docs
from gradeflow.api.lifespan import lifespan
from gradeflow.api.observe import Observe
from gradeflow.api.request_id import RequestId
from gradeflow.api.size_limits import BodyLimit, HeadLimits
from gradeflow.audit import router as audit
from gradeflow.certificates.router import certificates, certifications, diplomas
from gradeflow.core import logs
from gradeflow.core.settings import Settings, get_settings
from gradeflow.courses.router import assessments, courses, enrollments, groups, sessions
from gradeflow.deadlines.router import late_policy, overrides
from gradeflow.grades.router import grades, grading, policy
from gradeflow.http import errors
from gradeflow.lti import router as lti
from gradeflow.lti.router.score_lane import ScoreLane
from gradeflow.mailings.router import documents, mailings
from gradeflow.marking.router import marking, moderation
from gradeflow.publishing.router import me, publications, reviews
from gradeflow.readside.router import dashboard, gradebook, progress, results, statistics
from gradeflow.reports import router as reports
from gradeflow.scores.router import attempts, feedback, imports, scores
from gradeflow.scores.router.fast_lane import FastLane
from gradeflow.system import router as system
from gradeflow.webhooks import router as webhooks

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
        # Metrics and logs are our own (Prometheus, JSON lines): FastAPI's OpenTelemetry hooks stay off rather
        # than being asked on every request whether a provider was configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings or get_settings()
    errors.install(app)
    # Added first, so the innermost: the score PUT's common case, inside the limits, request ids and metrics.
    app.add_middleware(FastLane)
    # Likewise for an LTI tool's score POST (its common case), beside the native lane.
    app.add_middleware(ScoreLane)
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
        results,
        gradebook,
        progress,
        statistics,
        dashboard,
        me,
        documents,
        webhooks,
        staff,
        audit,
        lti,
    ):
        app.include_router(module.router, responses=errors.COMMON_RESPONSES)
    webhook_docs.install(app)
    return app


def serve() -> FastAPI:
    """The app as `gradeflow api` serves it (in each uvicorn worker process): logs as JSON lines."""
    settings = get_settings()
    logs.configure(settings.log_level)
    return create_app(settings)
