"""Formatting integer minor units for people. Arithmetic on money never uses floats."""

from decimal import Decimal

# ISO 4217 currencies without a minor unit, as Stripe lists them.
ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
     "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def exponent(currency: str) -> int:
    return 0 if currency.lower() in ZERO_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """`format_money(12050, "usd")` -> "$120.50"; unknown symbols fall back to the code."""
    currency = currency.lower()
    places = exponent(currency)
    value = Decimal(amount).scaleb(-places)
    text = f"{abs(value):,.{places}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def major_units(amount: int, currency: str) -> str:
    """12050, "usd" -> "120.50": no symbol, no grouping, for spreadsheets."""
    return format(major_amount(amount, currency), "f")


def major_amount(amount: int, currency: str) -> Decimal:
    """12050, "usd" -> Decimal("120.50"): minor units as an exact number in major units."""
    places = exponent(currency)
    return Decimal(amount).scaleb(-places).quantize(Decimal(1).scaleb(-places))
