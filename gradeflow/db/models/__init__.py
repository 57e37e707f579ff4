"""All tables. Import from here so alembic sees every model."""

from gradeflow.db.models.audit import AuditEntry
from gradeflow.db.models.certificates import (
    Certificate,
    CertificateAllowance,
    CertificateGeneration,
    CertificateImage,
    Certification,
)
from gradeflow.db.models.courses import Assessment, Course, CourseMember, Enrollment, Item
from gradeflow.db.models.deadlines import AssessmentOverride, LateApplication, LatePolicy
from gradeflow.db.models.feedback import Feedback
from gradeflow.db.models.grades import CourseGrade, GradeRecompute, GradingPolicy, StaleGrade
from gradeflow.db.models.imports import ScoreImport
from gradeflow.db.models.lti import LtiAccessToken, LtiTool, LtiToolCourse
from gradeflow.db.models.lti_line_items import LtiLineItem, LtiScoreTimestamp
from gradeflow.db.models.mailings import CandidateLetter, CandidateMailing, LearnerDocument
from gradeflow.db.models.marking import (
    Allocation,
    CandidateNumber,
    ItemRescore,
    Mark,
    ModerationSample,
    ModerationScaling,
    Workgroup,
)
from gradeflow.db.models.people import Learner, StaffMember
from gradeflow.db.models.publishing import Notification, Publication, PublishedGrade, PublishedResult
from gradeflow.db.models.reports import Report
from gradeflow.db.models.scores import Attempt, IdempotencyRecord, ItemScore
from gradeflow.db.models.sessions import CourseSession, LearnerGroup, ReviewSession
from gradeflow.db.models.tenancy import ApiKey, Organization
from gradeflow.db.models.webhooks import OutboxEvent, Webhook, WebhookAttempt, WebhookDelivery

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
    "LtiAccessToken",
    "LtiLineItem",
    "LtiScoreTimestamp",
    "LtiTool",
    "LtiToolCourse",
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
