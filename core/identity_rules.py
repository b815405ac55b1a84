"""Pure identity rules: the unified social credit code (统一社会信用代码) checksum and password policy."""
from __future__ import annotations

from core.errors import Unprocessable

# GB 32100-2015: 31 characters, no I, O, S, V or Z
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The 18th character for the first 17 of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why code is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return "must be 18 characters"
    bad = sorted({c for c in code if c not in USCC_ALPHABET})
    if bad:
        return f"contains characters outside the code alphabet: {''.join(bad)}"
    if not code[2:8].isdigit():
        return "characters 3-8 must be the administrative division code (digits)"
    if uscc_check_char(code[:17]) != code[17]:
        return "check character does not match"
    return None


def normalise_uscc(raw: str) -> str:
    """Upper-case and validate; raise 422 invalid_social_credit_code otherwise."""
    code = raw.strip().upper()
    problem = uscc_problem(code)
    if problem:
        raise Unprocessable(f"invalid unified social credit code: {problem}",
                            code="invalid_social_credit_code", details={"code": raw, "reason": problem})
    return code


def password_problem(password: str) -> str | None:
    if len(password) < 10:
        return "must be at least 10 characters"
    if len(password) > 256:
        return "must be at most 256 characters"
    if password.isdigit() or password.isalpha():
        return "must mix letters with digits or symbols"
    return None
