"""Money for people: how many decimals each currency has, integer minor units shown as
text, and amounts people type (in major units) read back into minor units.

Every format and parse goes through `exponent`, so the table below is the only place
that knows a currency's decimals. Arithmetic on money never uses floats.
"""

import re
from decimal import Decimal
from types import MappingProxyType

# Decimals of the minor unit, as ISO 4217 lists them, for every currency that has other
# than DEFAULT_EXPONENT. Two entries follow Stripe instead, because every amount this app
# holds is in Stripe's minor unit (Stripe reports purchases in it, transfers are sent in
# it, and the API takes amounts "as in Stripe"):
#   isk  ISO 4217: 0. Stripe's API still counts hundredths (100 is 1 króna) and asks
#        for multiples of 100, so 2 here.
#   mga  ISO 4217: 2. Stripe treats the ariary as zero-decimal, so 0 here.
# Stripe names bhd, jod, kwd, omr and tnd as three-decimal, as ISO does (1000 is one
# dinar or rial), and asks that amounts in its payment calls (payment intents, refunds)
# end in 0. This app makes no payment calls: it sends payout amounts unchanged as
# transfers and balance credits, and should Stripe refuse one, the payout fails with
# Stripe's message for a coordinator to see.
EXPONENTS = MappingProxyType({
    # No minor unit.
    "bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
    "pyg": 0, "rwf": 0, "ugx": 0, "uyi": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0,
    "xpf": 0,
    # Thousandths: fils, baisa, millimes, dirhams.
    "bhd": 3, "iqd": 3, "jod": 3, "kwd": 3, "lyd": 3, "omr": 3, "tnd": 3,
    # Units of account with four decimals.
    "clf": 4, "uyw": 4,
    # See above: ISO 4217 says 0.
    "isk": 2,
})
DEFAULT_EXPONENT = 2
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}

# An amount as people type it: digits, a decimal point and up to six decimals; thousands
# commas are dropped before the match. No signs, exponents or spaces inside.
TYPED_RE = re.compile(r"^(?:\d{1,15}(?:\.\d{1,6})?|\.\d{1,6})$")


class AmountError(ValueError):
    """A typed amount that is not one, with a sentence saying why."""


def exponent(currency: str) -> int:
    """How many decimals `currency`'s minor unit has: "usd" 2, "jpy" 0, "kwd" 3."""
    return EXPONENTS.get(currency.lower(), DEFAULT_EXPONENT)


def format_money(amount: int, currency: str) -> str:
    """`format_money(12050, "usd")` -> "$120.50"; unknown symbols fall back to the code:
    `format_money(1250, "kwd")` -> "1.250 KWD"."""
    currency = currency.lower()
    value = major_amount(amount, currency)
    text = f"{abs(value):,.{exponent(currency)}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def major_units(amount: int, currency: str) -> str:
    """12050, "usd" -> "120.50": no symbol, no grouping, for spreadsheets and inputs."""
    return format(major_amount(amount, currency), "f")


def major_amount(amount: int, currency: str) -> Decimal:
    """12050, "usd" -> Decimal("120.50"): minor units as an exact number in major units."""
    places = exponent(currency)
    return Decimal(amount).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def read_major(text: str | None) -> Decimal | None:
    """What a person typed as an amount in major units ("1,200.5") -> Decimal("1200.5");
    None when nothing was typed; AmountError when it is not a plain amount."""
    raw = (text or "").strip().replace(",", "")
    if not raw:
        return None
    if not TYPED_RE.match(raw):
        raise AmountError("Not an amount.")
    return Decimal(raw)


def parse_major(text: str | None, currency: str, *, example: int = 2500) -> int | None:
    """A typed amount in major units -> minor units of `currency`: "25.5" usd -> 2550,
    "2.5" kwd -> 2500, "700" jpy -> 700; None when nothing was typed. AmountError
    otherwise, whose message shows `example` (minor units) as the currency writes it."""
    try:
        major = read_major(text)
    except AmountError:
        raise AmountError(f"Give an amount like {major_units(example, currency)}.") from None
    if major is None:
        return None
    places = exponent(currency)
    minor = major.scaleb(places)
    if minor != minor.to_integral_value():
        code = currency.upper()
        raise AmountError(f"{code} amounts have at most {places} decimal places." if places
                          else f"{code} amounts are whole numbers.")
    return int(minor)
