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


def _filename(name: str, selection: Selection) -> str:
    program = selection.program.slug if selection.program else "all"
    return f"{name}-{program}-{selection.scope.start}-{selection.scope.end}.csv"


@bp.get("/export/<table>.csv")
def export_table(table: str):
    if table not in marketing_exports.TABLES:
        return _text("There is no such dashboard table. Tables: "
                     f"{', '.join(marketing_exports.TABLES)}.", 404)
    try:
        selection = parse(request.args)
    except BadScope as error:
        return _text(str(error), 400)
    rollups.refresh()
    header, rows = marketing_exports.table(table, report(selection.scope))
    return csv_response(_filename(f"dashboard-{table}", selection), header, lambda: rows)


@bp.get("/export/raw/<kind>.csv")
def export_raw(kind: str):
    if kind not in marketing_exports.RAW:
        return _text("There is no such export. Raw exports: "
                     f"{', '.join(marketing_exports.RAW)}.", 404)
    try:
        selection = parse(request.args)
    except BadScope as error:
        return _text(str(error), 400)
    header, rows = marketing_exports.RAW[kind]
    scope = selection.scope
    record_download(current_user, f"{kind}.csv", request.query_string.decode())
    return csv_response(_filename(kind, selection), header, lambda: rows(scope))
