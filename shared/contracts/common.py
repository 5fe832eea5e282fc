"""Shapes shared by every API body: camelCase JSON, pages, and RFC 9457 problem details."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

T = TypeVar("T")

ENVIRONMENT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"

EnvironmentId = Annotated[
    str,
    StringConstraints(pattern=ENVIRONMENT_ID_PATTERN),
    Field(description="Lower-case letters, digits and hyphens; 3 to 63 characters."),
]
NAMESPACE_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"

NamespaceName = Annotated[
    str,
    StringConstraints(pattern=NAMESPACE_PATTERN),
    Field(description="Lower-case letters, digits and hyphens; 1 to 63 characters."),
]

# The wire keeps `snapshotId` where it said so before the code's word became "backup" (docs/decisions/0001).
BackupId = Annotated[str, Field(alias="snapshotId", description="The backup's id.")]
BackupIdOrNone = Annotated[str | None, Field(alias="snapshotId", description="The backup's id, if any.")]


class ApiModel(BaseModel):
    """Base of every request and response body: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Page(ApiModel, Generic[T]):
    items: list[T]
    continuation_token: str | None = Field(
        default=None, description="Pass as `continuationToken` to get the next page; absent on the last page."
    )


class FieldError(ApiModel):
    field: str
    message: str


class Problem(ApiModel):
    """RFC 9457 problem details, with a stable `code` for programs."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
