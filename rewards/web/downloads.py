"""Streaming CSV answers, safe to open in a spreadsheet (the coordinator's and marketing's
exports)."""

import csv
import io
from collections.abc import Callable, Iterable
from decimal import Decimal

from flask import Response, current_app

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows are sent in pieces of about this many characters, not one write per row.
CHUNK = 16 * 1024


def safe_cell(value) -> str:
    """The cell as text, with a leading quote when it would otherwise run as a formula.

    Numbers (int, Decimal) are written as they are: a negative amount is a number, not a
    formula, and must stay one for the spreadsheet.
    """
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_response(filename: str, header: Iterable[str],
                 rows: Callable[[], Iterable[Iterable]]) -> Response:
    """Stream `rows()` as a CSV attachment, in pieces of about `CHUNK` characters.

    The generator opens its own app context once the header line has been sent, rather
    than keeping the request's context alive with `stream_with_context`: that context
    stays pushed until the body is consumed or closed, and a client that never reads it
    (a test client, a dropped connection) would leave it, and the signed-in user it caches
    in `g`, in place for whatever the same thread handles next. The header goes first,
    outside any context, because a WSGI caller may pull one piece before it decides to
    read on (Werkzeug's test client does). So `rows` must not need the request: pass it
    plain values (ids, dates), not rows of the request's session.
    """
    app = current_app._get_current_object()
    header = list(header)

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        with app.app_context():
            for row in rows():
                writer.writerow([safe_cell(value) for value in row])
                if buffer.tell() >= CHUNK:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    response = Response(lines(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
