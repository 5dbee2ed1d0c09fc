"""Showing staff only what their role needs of personal data."""


def mask_email(email: str | None) -> str:
    """`maria.lopez@example.com` -> `m***@example.com`."""
    if not email or "@" not in email:
        return "—"
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"
