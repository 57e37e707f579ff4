"""All tables. Import from here so alembic sees every model."""

from shared.db.models.audit import AuditEntry
from shared.db.models.certificates import (
    Certificate,
    CertificateAllowance,
    CertificateGeneration,
    CertificateImage,
    Certification,
)
from shared.db.models.courses import Assessment, Course, CourseMember, Enrollment, Item
from shared.db.models.deadlines import AssessmentOverride, LateApplication, LatePolicy
from shared.db.models.feedback import Feedback
from shared.db.models.grades import CourseGrade, GradeRecompute, GradingPolicy, StaleGrade
from shared.db.models.imports import ScoreImport
from shared.db.models.mailings import CandidateLetter, CandidateMailing, LearnerDocument
from shared.db.models.marking import (
    Allocation,
    CandidateNumber,
    ItemRescore,
    Mark,
    ModerationSample,
    ModerationScaling,
    Workgroup,
)
from shared.db.models.people import Learner, StaffMember
from shared.db.models.publishing import Notification, Publication, PublishedGrade, PublishedResult
from shared.db.models.reports import Report
from shared.db.models.scores import Attempt, IdempotencyRecord, ItemScore
from shared.db.models.sessions import CourseSession, LearnerGroup, ReviewSession
from shared.db.models.tenancy import ApiKey, Organization
from shared.db.models.webhooks import OutboxEvent, Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "Allocation",
    "ApiKey",
    "Assessment",
    "AssessmentOverride",
    "Attempt",
    "AuditEntry",
    "CandidateLetter",
    "CandidateMailing",
    "CandidateNumber",
    "Certificate",
    "CertificateAllowance",
    "CertificateGeneration",
    "CertificateImage",
    "Certification",
    "Course",
    "CourseGrade",
    "CourseMember",
    "CourseSession",
    "Enrollment",
    "Feedback",
    "GradeRecompute",
    "GradingPolicy",
    "IdempotencyRecord",
    "Item",
    "ItemRescore",
    "ItemScore",
    "LateApplication",
    "LatePolicy",
    "Learner",
    "LearnerDocument",
    "LearnerGroup",
    "Mark",
    "ModerationSample",
    "ModerationScaling",
    "Notification",
    "Organization",
    "OutboxEvent",
    "Publication",
    "PublishedGrade",
    "PublishedResult",
    "Report",
    "ReviewSession",
    "ScoreImport",
    "StaffMember",
    "StaleGrade",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "Workgroup",
]
