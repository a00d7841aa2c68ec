"""Resident ID numbers (GB 11643-1999): the check character, the birth date, the region, and the
masked form; no message ever repeats the number."""

import random
from datetime import date

import pytest

from portal.accounts import idcard
from portal.accounts.idcard import IdNumberError

TODAY = date(2026, 11, 28)


def iso7064_mod_11_2(body: str) -> str:
    """The standard's other formulation, as an oracle: p = (p + d)·2 mod 11, C = (12 − p) mod 11."""
    p = 0
    for digit in body:
        p = (p + int(digit)) * 2 % 11
    c = (12 - p) % 11
    return "X" if c == 10 else str(c)


def with_check(body: str) -> str:
    return body + iso7064_mod_11_2(body)


@pytest.mark.parametrize("number", ["11010519491231002X", "38064219921117061X", "486268198802140611"])
def test_published_numbers_have_the_right_check_character(number):
    # python-stdnum's cn.ric vectors; the last two have made-up regions, so only the check is asked.
    assert idcard.check_char(number[:17]) == number[17]


def test_the_weighted_sum_and_the_iso_7064_loop_agree():
    rng = random.Random(11643)
    for _ in range(5000):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        assert idcard.check_char(body) == iso7064_mod_11_2(body)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # 北京朝阳, the check character X
        with_check("44030420000229123"),  # 深圳南山, born on a leap day
        with_check("65010219800101001"),  # 乌鲁木齐
        with_check("81000019900101001"),  # 香港居民居住证
    ],
)
def test_valid_numbers_pass(number):
    assert idcard.validate(number, today=TODAY) == number


def test_input_is_normalized_before_it_is_checked():
    # A lower-case x, full-width characters from a Chinese input method, spaces and hyphens.
    assert idcard.validate("11010519491231002x", today=TODAY) == "11010519491231002X"
    assert idcard.validate("１１０１０５１９４９１２３１００２Ｘ", today=TODAY) == "11010519491231002X"
    assert idcard.validate(" 110105 19491231 002X ", today=TODAY) == "11010519491231002X"
    assert idcard.validate("110105-19491231-002X", today=TODAY) == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("", "请填写身份证号码"),
        ("110105491231002", "请填写18位身份证号码（15位旧号码已停止使用）"),
        ("1101051949123100", "身份证号码应为18位：前17位是数字，最后一位是数字或X"),
        ("1101051949123100AX", "身份证号码应为18位：前17位是数字，最后一位是数字或X"),
        ("110105194912310021", "身份证号码校验位错误"),
        (with_check("99010519491231002"), "身份证号码的地区码无效"),  # no such province
        (with_check("11000019491231002"), "身份证号码的地区码无效"),  # a province, not a county
        (with_check("11010519490231002"), "身份证号码中的出生日期无效"),  # 31 February
        (with_check("11010520270101002"), "身份证号码中的出生日期无效"),  # born after TODAY
        (with_check("11010518991231002"), "身份证号码中的出生日期无效"),  # older than 120
    ],
)
def test_invalid_numbers_are_refused_with_a_reason_that_does_not_repeat_them(number, message):
    with pytest.raises(IdNumberError) as refused:
        idcard.validate(number, today=TODAY)
    assert str(refused.value) == message
    assert not number or number not in str(refused.value)


def test_only_the_region_code_and_the_last_four_characters_are_shown():
    assert idcard.mask("11010519491231002X") == "110105********002X"
    assert len(idcard.mask("11010519491231002X")) == 18


def test_the_birth_date_is_read_from_the_number():
    assert idcard.birth_date("11010519491231002X") == date(1949, 12, 31)
