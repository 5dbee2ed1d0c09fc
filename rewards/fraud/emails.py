"""Email addresses as a fraud check reads them: the mailbox an address reaches, once the
parts its provider ignores are dropped, and disposable email services."""

from disposable_email_domains import blocklist

# Mail providers that deliver differently written addresses to one mailbox. Each entry:
# (the domain the provider's aliases fold to, whether dots in the name are ignored, the
# separator after which a tag is ignored). Only providers documented to behave so are
# listed; for every other domain only letter case is folded.
#   Gmail: dots and +tags ignored; googlemail.com is the same mailbox as gmail.com.
#   Outlook.com / Hotmail / Live / MSN, iCloud (icloud.com, me.com, mac.com), Fastmail,
#   Proton: +tags ignored ("plus addressing").
#   Yahoo: disposable addresses are "nickname-keyword"; the keyword is dropped.
_GMAIL = ("gmail.com", True, "+")
PROVIDERS: dict[str, tuple[str, bool, str]] = {
    "gmail.com": _GMAIL,
    "googlemail.com": _GMAIL,
    **{domain: (domain, False, "+") for domain in (
        "outlook.com", "hotmail.com", "live.com", "msn.com",
        "icloud.com", "me.com", "mac.com",
        "fastmail.com", "fastmail.fm",
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
    )},
    "yahoo.com": ("yahoo.com", False, "-"),
}


def _split(email: str) -> tuple[str, str] | None:
    email = (email or "").strip().lower()
    if email.count("@") < 1:
        return None
    local, domain = email.rsplit("@", 1)
    return local, domain


def canonical_email(email: str) -> str:
    """The mailbox an address reaches: `J.Doe+ref@GMail.com` -> `jdoe@gmail.com`.

    Letter case is always folded; dots and tags only where the provider ignores them
    (see PROVIDERS).
    """
    parts = _split(email)
    if parts is None:
        return (email or "").strip().lower()
    local, domain = parts
    rule = PROVIDERS.get(domain)
    if rule is None:
        return f"{local}@{domain}"
    domain, ignores_dots, separator = rule
    local = local.split(separator, 1)[0] or local
    if ignores_dots:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def ignored_parts(email: str) -> str:
    """What canonical_email ignored for this address's provider, in words."""
    parts = _split(email)
    rule = PROVIDERS.get(parts[1]) if parts else None
    if rule is None:
        return "letter case is"
    if rule[1]:
        return "dots and +tags are"
    return "-keywords are" if rule[2] == "-" else "+tags are"


def disposable_domain(email: str | None) -> str | None:
    """The disposable email service the address is at (a subdomain counts), or None."""
    parts = _split(email or "")
    if parts is None:
        return None
    labels = parts[1].split(".")
    for start in range(len(labels) - 1):
        domain = ".".join(labels[start:])
        if domain in blocklist:
            return domain
    return None
