"""The authenticated caller: who every service, rule and access policy is asked about."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request, a job or a CLI command."""

    user_id: int
    public_id: str
    organisation_id: int | None
    roles: frozenset[str]
    # the user and organisation columns read when authenticating (see web.middleware.PRINCIPAL_SQL)
    profile: Any = field(default=None, compare=False, repr=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))
