"""All tables. Import from here so alembic sees every model."""

from shared.db.models.courses import Assessment, Course, CourseMember, Enrollment, Item
from shared.db.models.scores import Attempt, IdempotencyRecord, ItemScore
from shared.db.models.tenancy import ApiKey, Organization

__all__ = [
    "ApiKey",
    "Assessment",
    "Attempt",
    "Course",
    "CourseMember",
    "Enrollment",
    "IdempotencyRecord",
    "Item",
    "ItemScore",
    "Organization",
]
