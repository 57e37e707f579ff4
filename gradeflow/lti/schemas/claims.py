"""The LTI launch claims an LMS copies into its id_token."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gradeflow.lti.service.claims import LaunchClaims

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEPLOYMENT_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"


class AgsEndpointOut(BaseModel):
    scope: list[str] = Field(description="The AGS scopes the tool may be granted.")
    lineitems: str = Field(description="The course's line item container.")
    lineitem: str | None = Field(default=None, description="The resource link's line item, when it has one.")


class NamesRoleServiceOut(BaseModel):
    context_memberships_url: str
    service_versions: list[str]


class LaunchClaimsOut(BaseModel):
    """Claims keyed by their names; a service claim is absent when the tool may not be granted its scopes."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    deployment_id: str = Field(alias=DEPLOYMENT_CLAIM)
    ags_endpoint: AgsEndpointOut | None = Field(default=None, alias=AGS_CLAIM)
    names_role_service: NamesRoleServiceOut | None = Field(default=None, alias=NRPS_CLAIM)

    @classmethod
    def of(cls, claims: LaunchClaims) -> LaunchClaimsOut:
        ags = claims.ags
        nrps = claims.nrps
        return cls(
            deployment_id=claims.deployment_id,
            ags_endpoint=None
            if ags is None
            else AgsEndpointOut(scope=ags.scope, lineitems=ags.lineitems, lineitem=ags.lineitem),
            names_role_service=None
            if nrps is None
            else NamesRoleServiceOut(
                context_memberships_url=nrps.context_memberships_url, service_versions=nrps.service_versions
            ),
        )
