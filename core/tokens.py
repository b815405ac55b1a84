"""EdDSA access tokens (JWT, typ at+jwt) and opaque refresh tokens."""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import Unauthorized
from core.keys import key_id

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "nbf", "iat", "jti")


@dataclass(frozen=True)
class AccessClaims:
    sub: str  # user public id
    roles: tuple[str, ...]
    org: str | None
    iat: datetime
    jti: str


class TokenIssuer:
    """Signs and checks access tokens with the platform key; verification keys are looked up by kid."""

    CACHE_SIZE = 50_000

    def __init__(self, private_key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl_s: int,
                 extra_public_keys: dict[str, Ed25519PublicKey] | None = None):
        self._private = private_key
        self.kid = key_id(private_key.public_key())
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self._public = {self.kid: private_key.public_key(), **(extra_public_keys or {})}
        # token string -> (claims, exp); a hit is the same signed bytes, so re-verifying would say the same
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

    def issue(self, *, sub: str, roles: list[str], org: str | None, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        ts = int(now.timestamp())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": ts, "nbf": ts,
                  "exp": ts + self.ttl_s, "jti": uuid.uuid4().hex, "roles": sorted(roles), "org": org}
        return jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "at+jwt"})

    def verify(self, token: str) -> AccessClaims:
        """Verify a token, remembering good ones by their exact bytes until they expire."""
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        claims, exp = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # bounded; refilled by live traffic
        self._verified[token] = (claims, exp)
        return claims

    def _verify(self, token: str) -> tuple[AccessClaims, float]:
        """Decode with the algorithm pinned; every refusal carries a stable code."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as err:
            raise Unauthorized("malformed access token", code="token_malformed") from err
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("token algorithm not allowed", code="token_algorithm_not_allowed")
        if header.get("typ") != "at+jwt":
            raise Unauthorized("not an access token", code="token_wrong_type")
        key = self._public.get(header.get("kid"))
        if key is None:
            raise Unauthorized("unknown signing key", code="token_unknown_kid")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                                options={"require": list(REQUIRED_CLAIMS)}, leeway=5)
        except jwt.ExpiredSignatureError as err:
            raise Unauthorized("access token expired", code="token_expired") from err
        except jwt.ImmatureSignatureError as err:
            raise Unauthorized("access token not yet valid", code="token_not_yet_valid") from err
        except jwt.InvalidAudienceError as err:
            raise Unauthorized("access token audience mismatch", code="token_wrong_audience") from err
        except jwt.InvalidIssuerError as err:
            raise Unauthorized("access token issuer mismatch", code="token_wrong_issuer") from err
        except jwt.MissingRequiredClaimError as err:
            raise Unauthorized(f"access token lacks claim {err.claim}", code="token_missing_claim") from err
        except jwt.InvalidSignatureError as err:
            raise Unauthorized("access token signature invalid", code="token_bad_signature") from err
        except jwt.PyJWTError as err:
            raise Unauthorized("access token invalid", code="token_invalid") from err
        return AccessClaims(sub=claims["sub"], roles=tuple(claims.get("roles") or ()), org=claims.get("org"),
                            iat=datetime.fromtimestamp(claims["iat"], timezone.utc),
                            jti=claims["jti"]), float(claims["exp"])


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, SHA-256 hex to store)."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_hash(token)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
