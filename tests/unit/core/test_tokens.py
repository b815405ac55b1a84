"""Access tokens: every malformed or hostile token is refused with a stable error code."""
import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.errors import Unauthorized
from core.tokens import TokenIssuer

KEY = Ed25519PrivateKey.generate()


def issuer(**kw) -> TokenIssuer:
    return TokenIssuer(KEY, issuer="bidroom", audience="bidroom-api", ttl_s=600, **kw)


def refused_code(token: str, verifier: TokenIssuer | None = None) -> str:
    with pytest.raises(Unauthorized) as err:
        (verifier or issuer()).verify(token)
    return err.value.code


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_issued_token_round_trips_with_required_header_and_claims():
    tok = issuer().issue(sub="U-ABC123", roles=["bidder"], org="O-XYZ789")
    header = jwt.get_unverified_header(tok)
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt" and header["kid"] == issuer().kid
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert {"iss", "aud", "exp", "nbf", "iat", "jti", "sub"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 600
    assert issuer().verify(tok).sub == "U-ABC123"


def test_alg_none_is_refused():
    now = int(datetime.now(timezone.utc).timestamp())
    body = {"iss": "bidroom", "aud": "bidroom-api", "sub": "U-1", "iat": now, "nbf": now, "exp": now + 60,
            "jti": "x"}
    token = b64({"alg": "none", "typ": "at+jwt", "kid": issuer().kid}) + "." + b64(body) + "."
    assert refused_code(token) == "token_algorithm_not_allowed"


def test_hmac_signed_with_the_public_key_is_refused():
    token = b64({"alg": "HS256", "typ": "at+jwt", "kid": issuer().kid}) + "." + b64({"sub": "U-1"}) + ".c2ln"
    assert refused_code(token) == "token_algorithm_not_allowed"


def test_unknown_kid_is_refused():
    other = TokenIssuer(Ed25519PrivateKey.generate(), issuer="bidroom", audience="bidroom-api", ttl_s=600)
    assert refused_code(other.issue(sub="U-1", roles=[], org=None)) == "token_unknown_kid"


def test_expired_token_is_refused():
    tok = issuer().issue(sub="U-1", roles=[], org=None, now=datetime.now(timezone.utc) - timedelta(hours=1))
    assert refused_code(tok) == "token_expired"


def test_wrong_audience_is_refused():
    other = TokenIssuer(KEY, issuer="bidroom", audience="someone-else", ttl_s=600)
    assert refused_code(other.issue(sub="U-1", roles=[], org=None)) == "token_wrong_audience"


def test_missing_claim_is_refused():
    now = int(datetime.now(timezone.utc).timestamp())
    token = jwt.encode({"iss": "bidroom", "aud": "bidroom-api", "sub": "U-1", "iat": now, "exp": now + 60},
                       KEY, algorithm="EdDSA", headers={"kid": issuer().kid, "typ": "at+jwt"})
    assert refused_code(token) == "token_missing_claim"


def test_tampered_payload_is_refused():
    tok = issuer().issue(sub="U-1", roles=["bidder"], org=None)
    head, _, sig = tok.split(".")
    forged = head + "." + b64({**jwt.decode(tok, options={"verify_signature": False}), "roles": ["admin"]}) + "." + sig
    assert refused_code(forged) == "token_bad_signature"


def test_garbage_is_refused_as_malformed():
    assert refused_code("not-a-token") == "token_malformed"
