"""Currency exponents, formatting minor units and reading typed amounts (rewards.money)."""

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.money import (
    AmountError,
    exponent,
    format_money,
    major_amount,
    major_units,
    parse_major,
    read_major,
)

# One currency of each exponent, with and without a symbol.
CURRENCIES = ("usd", "eur", "cad", "jpy", "krw", "clp", "vnd", "kwd", "bhd", "tnd", "clf")
AMOUNTS = st.integers(min_value=0, max_value=10**14)  # 15 digits: as much as people type


def test_each_currency_has_its_iso_4217_exponent():
    for code in ("bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd"):
        assert exponent(code) == 3, code
    for code in ("jpy", "krw", "clp", "vnd", "bif", "pyg", "xof", "xaf", "ugx"):
        assert exponent(code) == 0, code
    for code in ("usd", "eur", "gbp", "chf", "inr", "brl", "mxn"):
        assert exponent(code) == 2, code
    assert exponent("clf") == 4
    assert exponent("KWD") == 3 and exponent("Jpy") == 0
    assert exponent("zzz") == 2  # unknown codes: two decimals


def test_where_stripe_counts_otherwise_the_app_counts_as_stripe_does():
    # ISO 4217 gives ISK 0 decimals and MGA 2; Stripe's amounts are in hundredths of a
    # króna and in whole ariary, and every amount here is Stripe's.
    assert format_money(50000, "isk") == "500.00 ISK"
    assert format_money(5000, "mga") == "5,000 MGA"


@pytest.mark.parametrize(("amount", "currency", "shown", "major"), [
    (1250, "kwd", "1.250 KWD", "1.250"),
    (5, "kwd", "0.005 KWD", "0.005"),
    (-1234567, "bhd", "-1,234.567 BHD", "-1234.567"),
    (1234567, "jpy", "¥1,234,567", "1234567"),
    (-700, "krw", "-700 KRW", "-700"),
    (12050, "usd", "$120.50", "120.50"),
    (-5, "eur", "-€0.05", "-0.05"),
    (12345, "clf", "1.2345 CLF", "1.2345"),
])
def test_formatting_follows_the_exponent(amount, currency, shown, major):
    assert format_money(amount, currency) == shown
    assert major_units(amount, currency) == major
    assert major_amount(amount, currency) == Decimal(major)


@given(amount=AMOUNTS, currency=st.sampled_from(CURRENCIES))
def test_an_amount_in_major_units_reads_back_to_the_same_minor_units(amount, currency):
    assert parse_major(major_units(amount, currency), currency) == amount
    assert major_amount(amount, currency).scaleb(exponent(currency)) == amount


@given(amount=AMOUNTS, currency=st.sampled_from(CURRENCIES), negative=st.booleans())
def test_a_formatted_amount_reads_back_to_the_same_minor_units(amount, currency, negative):
    shown = format_money(-amount if negative else amount, currency)
    assert shown.startswith("-") == (negative and amount != 0)
    digits = re.sub(r"[^\d.]", "", shown)
    assert digits.count(".") == (1 if exponent(currency) else 0)
    assert len(digits.partition(".")[2]) == exponent(currency)
    assert parse_major(digits, currency) == amount


@given(whole=st.integers(min_value=0, max_value=10**9), currency=st.sampled_from(CURRENCIES),
       extra=st.integers(min_value=1, max_value=2))
def test_more_decimals_than_the_currency_has_are_refused(whole, currency, extra):
    places = exponent(currency)
    typed = f"{whole}.{'0' * places}{'5' * extra}"
    message = (f"{currency.upper()} amounts have at most {places} decimal places."
               if places else f"{currency.upper()} amounts are whole numbers.")
    with pytest.raises(AmountError, match=re.escape(message)):
        parse_major(typed, currency)


def test_typed_amounts():
    assert parse_major("2.5", "kwd") == 2500
    assert parse_major(" 1,234.567 ", "kwd") == 1234567
    assert parse_major(".005", "omr") == 5
    assert parse_major("2.500000", "kwd") == 2500  # trailing zeros are no extra precision
    assert parse_major("700", "jpy") == 700
    assert parse_major("25.5", "usd") == 2550
    assert parse_major("", "kwd") is None and parse_major(None, "usd") is None
    assert read_major("1,200.5") == Decimal("1200.5") and read_major("  ") is None
    for bad in ("-1", "+1", "1.", "1e3", ".5e1", "1 000", "NaN", "Infinity", "1.0000001"):
        with pytest.raises(AmountError):
            read_major(bad)
        with pytest.raises(AmountError, match=r"^Give an amount like 2\.500\.$"):
            parse_major(bad, "kwd")
    with pytest.raises(AmountError, match=r"^Give an amount like 2500\.$"):
        parse_major("ten", "jpy")
    with pytest.raises(AmountError, match=r"^Give an amount like 120\.00\.$"):
        parse_major("ten", "usd", example=12000)
