"""Request and response models for identity endpoints."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "agent", "purchaser", "bidder", "expert", "supervisor", "intermediary"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganisationIn(Strict):
    name: str = Field(min_length=2, max_length=200, description="registered name, e.g. 中山市某某建设有限公司")
    social_credit_code: str = Field(min_length=18, max_length=18, description="统一社会信用代码")
    region_code: str | None = Field(default=None, max_length=12)


class RegisterIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{6,15}$")
    role: Literal["bidder", "intermediary"]
    organisation: OrganisationIn


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class ChangePasswordIn(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=10, max_length=256)
    refresh_token: str | None = Field(default=None, max_length=200,
                                      description="this session's refresh token, kept (browsers: the cookie)")


class RefreshIn(Strict):
    refresh_token: str | None = Field(default=None, max_length=200,
                                      description="omit in browsers: the __Host- cookie is used")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str


class OrganisationOut(BaseModel):
    public_id: str
    name: str
    social_credit_code: str | None
    kind: str
    region_code: str | None


class UserOut(BaseModel):
    public_id: str
    username: str
    display_name: str
    roles: list[str]
    organisation: OrganisationOut | None
    is_active: bool
    totp_enrolled: bool
    created_at: datetime


class CreateUserIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    organisation_id: str | None = Field(default=None, description="organisation public id")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{6,15}$")


class CreatedUserOut(BaseModel):
    user: UserOut
    totp_provisioning_uri: str | None = Field(
        default=None, description="shown once: scan into an authenticator app (admin, agent, supervisor)")


class CreateOrganisationIn(Strict):
    name: str = Field(min_length=2, max_length=200)
    social_credit_code: str | None = Field(default=None, min_length=18, max_length=18)
    kind: Literal["centre", "tenderer", "agency", "company", "government", "institution"] = "company"
    region_code: str | None = Field(default=None, max_length=12)


class UserPage(BaseModel):
    items: list[UserOut]
    next: str | None


class ListQuery(Strict):
    cursor: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    data: dict
    created_at: datetime
    read_at: datetime | None


class InboxQuery(BaseModel):
    unread: bool = False
    limit: int = Field(default=50, ge=1, le=200)
