"""The JSON API (v1) for the business's servers: Bearer API keys, no cookies, no CSRF."""

from flask import Blueprint, g, request

from rewards.errors import ServiceError
from rewards.extensions import csrf
from rewards.people.apikeys import key_for

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

QUERY_KEY_NAMES = ("api_key", "apikey", "key", "token", "access_token")


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


@bp.before_request
def authenticate():
    if any(name in request.args for name in QUERY_KEY_NAMES):
        raise ServiceError("API keys are not accepted in the query string; send "
                           "'Authorization: Bearer <key>'.", code="key_in_query")
    scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    api_key = key_for(key.strip())
    if api_key is None:
        raise Unauthorized("The API key is not valid.")
    g.api_key = api_key


from rewards.web.api import views  # noqa: E402,F401
