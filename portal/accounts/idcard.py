"""Resident ID numbers (居民身份证号码, GB 11643-1999): checking and masking. Pure functions.

An ID number is 18 characters: a 6-digit administrative region code, the birth date as YYYYMMDD,
a 3-digit sequence (odd for men, even for women) and a check character computed with
ISO 7064 MOD 11-2 over the first 17 digits (0–9, or X for 10).

Error messages are Chinese, meant for the person typing, and never repeat the number: the raw
number is sensitive personal data and must not reach logs, audit records or pages. Only
`mask()`'s form (the region code and the last four characters) is ever shown.
"""

import re
import unicodedata
from datetime import date

# W_i = 2^(18-i) mod 11 for i = 1..17; the check character is CHECK_CHARS[sum(d_i·W_i) mod 11].
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

# Province-level codes of GB/T 2260 that appear on resident ID cards, and 81/82/83: the residence
# permits of Hong Kong, Macao and Taiwan residents (港澳台居民居住证) use the same layout with region
# 810000, 820000 and 830000.
PROVINCES = {
    "11", "12", "13", "14", "15",  # 北京 天津 河北 山西 内蒙古
    "21", "22", "23",  # 辽宁 吉林 黑龙江
    "31", "32", "33", "34", "35", "36", "37",  # 上海 江苏 浙江 安徽 福建 江西 山东
    "41", "42", "43", "44", "45", "46",  # 河南 湖北 湖南 广东 广西 海南
    "50", "51", "52", "53", "54",  # 重庆 四川 贵州 云南 西藏
    "61", "62", "63", "64", "65",  # 陕西 甘肃 青海 宁夏 新疆
}  # fmt: skip
PERMIT_REGIONS = {"810000", "820000", "830000"}
MAX_AGE = 120  # an older birth date is a typing error, not a person

_SHAPE = re.compile(r"\d{17}[\dX]")
MASK_STARS = 8


class IdNumberError(ValueError):
    """The number is not a valid resident ID number; the message says why, in Chinese."""


def normalize(raw: str) -> str:
    """Full-width digits and letters (typed with a Chinese input method) become ASCII, spaces and
    hyphens go, and a lower-case x becomes X."""
    text = unicodedata.normalize("NFKC", raw or "")
    return re.sub(r"[\s-]", "", text).upper()


def check_char(body: str) -> str:
    """The check character for the first 17 digits."""
    return CHECK_CHARS[sum(int(digit) * weight for digit, weight in zip(body, WEIGHTS, strict=True)) % 11]


def birth_date(number: str) -> date:
    """The birth date a well-formed number carries; ValueError if it is no real date."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def validate(raw: str, *, today: date | None = None) -> str:
    """The normalized number, or IdNumberError: the wrong shape, an unknown region, a birth date
    that is not a real date, in the future or more than MAX_AGE years ago, or a wrong check
    character."""
    number = normalize(raw)
    if not number:
        raise IdNumberError("请填写身份证号码")
    if len(number) == 15 and number.isdigit():
        raise IdNumberError("请填写18位身份证号码（15位旧号码已停止使用）")
    if not _SHAPE.fullmatch(number):
        raise IdNumberError("身份证号码应为18位：前17位是数字，最后一位是数字或X")
    region = number[:6]
    if region not in PERMIT_REGIONS and (region[:2] not in PROVINCES or region[2:] == "0000"):
        raise IdNumberError("身份证号码的地区码无效")
    today = today or date.today()
    try:
        born = birth_date(number)
    except ValueError:
        raise IdNumberError("身份证号码中的出生日期无效") from None
    if born > today or today.year - born.year > MAX_AGE:
        raise IdNumberError("身份证号码中的出生日期无效")
    if check_char(number[:17]) != number[17]:
        raise IdNumberError("身份证号码校验位错误")
    return number


def mask(number: str) -> str:
    """The form shown on pages and kept in audit records: the region code and the last four
    characters, with the birth date and sequence hidden (110101********4578)."""
    return number[:6] + "*" * MASK_STARS + number[-4:]
