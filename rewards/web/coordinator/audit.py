"""The staff audit log: filtered, paged, exported."""

from flask import render_template, request

from rewards.audit import entries as audit_log
from rewards.audit.entries import AuditFilters
from rewards.audit.log import record_download
from rewards.models import utcnow
from rewards.web.coordinator import bp
from rewards.web.coordinator.common import filters_from_query, me
from rewards.web.downloads import csv_response


@bp.get("/audit")
def audit():
    filters = filters_from_query(AuditFilters)
    page = audit_log.entries(filters, request.args.get("page", 1, type=int))
    return render_template("coordinator/audit.html", filters=filters, result=page,
                           actions=audit_log.actions())


@bp.get("/audit.csv")
def audit_csv():
    filters = AuditFilters.from_args(request.args)
    name = f"audit-{utcnow():%Y%m%d-%H%M%S}.csv"
    record_download(me(), "audit.csv", request.query_string.decode())
    return csv_response(name, audit_log.EXPORT_HEADER, lambda: audit_log.export_rows(filters))
