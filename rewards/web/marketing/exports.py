"""CSV downloads of the dashboard's tables and of the range's raw rows.

Both take the dashboard's query arguments (`program`, `range`, `start`, `end`; see
`ranges`). The rows come from `services.marketing_exports`; raw exports stream.
"""

from flask import Response, request
from flask_login import current_user

from rewards.analytics import exports as marketing_exports
from rewards.analytics import rollups
from rewards.analytics.dashboard import report
from rewards.audit.log import record_download
from rewards.web.downloads import csv_response
from rewards.web.marketing import bp
from rewards.web.marketing.ranges import BadScope, Selection, parse


def _text(message: str, status: int) -> Response:
    return Response(message, status, mimetype="text/plain")


def _selection(name: str, known, what: str) -> Selection | Response:
    """The page's program and range for an export of `name`, or the 404 or 400 answer."""
    if name not in known:
        return _text(f"There is no such {what}. There are: {', '.join(known)}.", 404)
    try:
        return parse(request.args)
    except BadScope as error:
        return _text(str(error), 400)


def _filename(name: str, selection: Selection) -> str:
    program = selection.program.slug if selection.program else "all"
    return f"{name}-{program}-{selection.scope.start}-{selection.scope.end}.csv"


@bp.get("/export/<table>.csv")
def export_table(table: str):
    selection = _selection(table, marketing_exports.TABLES, "dashboard table")
    if isinstance(selection, Response):
        return selection
    rollups.refresh()
    header, rows = marketing_exports.table(table, report(selection.scope))
    return csv_response(_filename(f"dashboard-{table}", selection), header, lambda: rows)


@bp.get("/export/raw/<kind>.csv")
def export_raw(kind: str):
    selection = _selection(kind, marketing_exports.RAW, "raw export")
    if isinstance(selection, Response):
        return selection
    header, rows = marketing_exports.RAW[kind]
    scope = selection.scope
    record_download(current_user, f"{kind}.csv", request.query_string.decode())
    return csv_response(_filename(kind, selection), header, lambda: rows(scope))
