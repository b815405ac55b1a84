"""Request and response shapes of the evaluation report's routes (evaluation.report_routes)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator


class ReportOut(BaseModel):
    """Where a session's evaluation report (评标报告) stands."""

    session_id: str
    session_status: str
    record_no: str | None = None
    revision: int | None = None
    supersedes: str | None = Field(default=None, description="the record number of the revision this one replaces")
    record_status: str | None = Field(default=None, description="signing | sealed")
    sha256: str | None = None
    signed: list[str] = Field(default_factory=list, description="member ids whose signature is on the PDF")
    refused: list[str] = Field(default_factory=list, description="refused without reasons: deemed agreement")
    dissented: list[str] = Field(default_factory=list, description="dissent filed after rendering")
    pending: list[str] = Field(default_factory=list)
    sealed: bool = False
    stale: bool = Field(default=False, description="a dissent awaits the next revision, which prints it")
    download: str | None = Field(default=None, description="the PDF, for the report's audience")
    issued_at: datetime | None = None


class DissentIn(BaseModel):
    reasons: str = Field(min_length=1, max_length=4000,
                         description="the dissent and its reasons, in writing (招标投标法实施条例 第53条)")

    @field_validator("reasons")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a dissent states its reasons")
        return value.strip()


class PublishIn(BaseModel):
    publicity_days: int = Field(default=3, ge=1, le=30,
                                description="at least 3 days (招标投标法实施条例 第54条) unless the periods are off")


class ReEvaluationIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ReEvaluationOut(BaseModel):
    session_id: str
    status: str
    lot_id: str
