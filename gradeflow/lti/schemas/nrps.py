"""NRPS 2.0 membership containers as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gradeflow.lti.service.nrps import Member, Memberships

MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


class MembershipContextOut(BaseModel):
    id: str = Field(description="The course key.")
    label: str = Field(description="The course key (Gradeflow has no separate short code).")
    title: str


class MembershipOut(BaseModel):
    user_id: str = Field(description="The user's LMS id (a learner's enrollment id, a staff member's user id).")
    roles: list[str] = Field(description="LIS context role URIs.")
    status: str = Field(description="Active, or Inactive for an unenrolled learner.")
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, m: Member) -> MembershipOut:
        return cls(
            user_id=m.user_id,
            roles=m.roles,
            status=m.status,
            name=m.name,
            given_name=m.given_name,
            family_name=m.family_name,
            email=m.email,
        )


class MembershipContainerOut(BaseModel):
    id: str = Field(description="This page's URL.")
    context: MembershipContextOut
    members: list[MembershipOut]

    @classmethod
    def of(cls, page: Memberships, url: str) -> MembershipContainerOut:
        course = page.context
        context = MembershipContextOut(id=course.external_id, label=course.external_id, title=course.title)
        return cls(id=url, context=context, members=[MembershipOut.of(m) for m in page.members])
