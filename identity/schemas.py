"""Request and response models of enrolment links."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from core.identity_schemas import Role, Strict, UserOut

USERNAME = r"^[A-Za-z0-9_.@-]+$"
Token = Annotated[str, Field(min_length=20, max_length=100, description="the token of the enrolment link")]


class StaffEnrolmentIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=USERNAME)
    display_name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1, description="staff roles; experts are enrolled from the pool")
    organisation_id: str | None = Field(default=None, description="organisation public id")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{6,15}$")


class EnrolmentLinkOut(BaseModel):
    enrolment_id: str
    purpose: Literal["expert_account", "staff_account"]
    roles: list[str]
    url: str = Field(description="shown once: send it to the person; only its SHA-256 is kept")
    token: str = Field(description="shown once: the token inside the url")
    expires_at: datetime
    expert_id: str | None = None
    user: UserOut | None = None


class EnrolmentQuery(Strict):
    token: Token


class EnrolmentOut(BaseModel):
    """What a link is for, as its holder sees it."""

    enrolment_id: str
    purpose: Literal["expert_account", "staff_account"]
    roles: list[str]
    username: str | None = Field(description="staff: chosen by the administrator; experts choose their own")
    display_name: str | None
    organisation: str | None
    expert_id: str | None
    expert_name: str | None
    needs_username: bool
    needs_totp: bool
    expires_at: datetime


class TokenIn(Strict):
    token: Token


class TotpOfferOut(BaseModel):
    totp_provisioning_uri: str = Field(description="scan into an authenticator app, then finish with a first code")


class CompleteEnrolmentIn(Strict):
    token: Token
    username: str | None = Field(default=None, min_length=3, max_length=64, pattern=USERNAME,
                                 description="experts choose one; staff accounts keep the administrator's")
    password: str = Field(min_length=10, max_length=256)
    totp: str | None = Field(default=None, pattern=r"^[0-9]{6}$",
                             description="the first code from the scanned secret (admin, agent, supervisor)")


class LinkAccountIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=USERNAME, description="an account with the expert role")


class ExpertAccountOut(BaseModel):
    expert_id: str
    account: UserOut
