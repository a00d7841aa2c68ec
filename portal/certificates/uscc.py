"""Unified social credit codes (统一社会信用代码, GB 32100-2015) and how certificates carry them.

A code is 18 characters from a 31-character alphabet (digits and capitals without I, O, S, V,
Z): registration authority (1), organisation type (1), administrative division (6), organisation
code (9, GB 11714) and a check digit. The check digit makes the weighted sum of all 18 values
(weights 3^(i-1) mod 31 for the first 17, 1 for itself) a multiple of 31; 31 being prime, that
catches every single-character error and every transposition of neighbours.

Only the GB 32100 check digit is enforced. The organisation code inside has a GB 11714 check
digit of its own, but the outer digit already covers those characters, and a code a registry
issued must never be refused on a stricter reading than the registry's.
"""

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28
_FORMAT = re.compile(f"[{ALPHABET}]{{18}}")

# In certificates a USCC goes into organizationIdentifier (2.5.4.97), not serialNumber: that is
# the attribute X.520 made for legal-entity identifiers, and serialNumber already carries the
# masked ID number in people's certificates, so a reader can never mistake one for the other.
# The value follows ETSI EN 319 412-1 §5.1.4: "NTR" (national trade register), the country code
# and a hyphen before the identifier, so it says which register the number belongs to.
IDENTIFIER_PREFIX = "NTRCN-"


def normalize(code: str) -> str:
    """What people type → the canonical form: no spaces, upper case."""
    return re.sub(r"\s+", "", code or "").upper()


def check_digit(first17: str) -> str:
    """The 18th character for the first 17 (GB 32100-2015 §4.5)."""
    if len(first17) != 17 or any(c not in ALPHABET for c in first17):
        raise ValueError("a USCC body is 17 characters from the GB 32100 alphabet")
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Whether code (already normalised) is 18 characters from the alphabet with a correct check digit."""
    return bool(code) and _FORMAT.fullmatch(code) is not None and check_digit(code[:17]) == code[17]


def organization_identifier(code: str) -> str:
    """The organizationIdentifier value for a valid USCC."""
    if not is_valid(code):
        raise ValueError(f"{code!r} is not a valid unified social credit code")
    return IDENTIFIER_PREFIX + code


def from_organization_identifier(value: str) -> str | None:
    """The USCC in an organizationIdentifier value, or None if it holds something else."""
    if value and value.startswith(IDENTIFIER_PREFIX) and is_valid(value[len(IDENTIFIER_PREFIX) :]):
        return value[len(IDENTIFIER_PREFIX) :]
    return None
