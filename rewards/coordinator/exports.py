"""Streaming CSV answers, safe to open in a spreadsheet."""

import csv
import io
from collections.abc import Callable, Iterable

from flask import Response, current_app

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """The cell as text, with a leading quote when it would otherwise run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_response(filename: str, header: Iterable[str],
                 rows: Callable[[], Iterable[Iterable]]) -> Response:
    """Stream `rows()` as a CSV attachment, a line at a time.

    The generator opens its own app context when the body is first read, rather than
    keeping the request's context alive with `stream_with_context`: that context stays
    pushed until the body is consumed or closed, and a client that never reads it (a test
    client, a dropped connection) would leave it, and the signed-in user it caches in `g`,
    in place for whatever the same thread handles next.
    """
    app = current_app._get_current_object()

    def lines():
        with app.app_context():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            for row in rows():
                writer.writerow([safe_cell(value) for value in row])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()

    response = Response(lines(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
