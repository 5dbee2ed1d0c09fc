"""The referral redirect GET /r/<code>, through RedirectLane and through the Flask view.

Every test runs both ways: the lane answers ahead of Flask and must give the same answer
as the `public.follow` view it hands requests on to. The click sender's batching is
tested at the end.
"""

import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from itsdangerous import URLSafeSerializer
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from sqlalchemy import select
from werkzeug.http import dump_cookie
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from rewards.attribution import clicks as clicks_module
from rewards.attribution.click_sender import ClickSender
from rewards.attribution.clicks import STREAM, flush_clicks, hash_ip
from rewards.extensions import db
from rewards.models import Click, Program
from rewards.people.codes import forget, primary_code
from rewards.people.customers import find_or_add_customer
from rewards.web.public import referral as referral_module
from rewards.web.public.redirect import RedirectLane
from rewards.web.visitor import sign_visitor_id
from rewards.web.visitor import visitor_cookie as visitor_cookie_header

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def set_destination(app, program_id: int, url: str | None, allowed: str | None) -> None:
    """Straight into the table, so tests can also store what the service would refuse."""
    with app.app_context():
        row = db.session.get(Program, program_id)
        row.destination_url, row.allowed_domain = url, allowed
        db.session.commit()
        forget()


@pytest.fixture(params=["lane", "flask"])
def client(request, app):
    """A test client through RedirectLane, or straight to Flask behind it."""
    lane = app.wsgi_app
    if request.param == "flask":
        app.wsgi_app = lane.wsgi_app
    yield app.test_client()
    app.wsgi_app = lane


@pytest.fixture
def referrer(app, program):
    """(customer id, referral code) of a customer of the default program."""
    with app.app_context():
        customer, _ = find_or_add_customer(db.session.get(Program, program), "r-1", "r@example.com")
        code = primary_code(customer).code
        db.session.commit()
        return customer.id, code


@pytest.fixture
def shop(app, program):
    set_destination(app, program, "https://shop.example/welcome?ref=1#top", "shop.example")
    return program


def clicks(app) -> list[Click]:
    with app.app_context():
        rows = list(db.session.scalars(select(Click).order_by(Click.id)))
        db.session.expunge_all()
        return rows


def visitor_cookie(response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    return cookie


def signed_visitor(app, value) -> str:
    return URLSafeSerializer(app.config["SECRET_KEY"], salt="visitor-id").dumps(value)


class TestWhereItGoes:
    def test_destination_gets_the_visitor_id_kept_query_and_fragment(self, app, client, shop,
                                                                      referrer):
        response = client.get(f"/r/{referrer[1]}")
        assert response.status_code == 302
        visitor = clicks(app)[0].visitor_id
        assert response.location == (
            f"https://shop.example/welcome?ref=1&visitor_id={visitor}#top"
        )

    def test_a_visitor_id_in_the_destination_is_replaced(self, app, client, program, referrer):
        set_destination(app, program, "https://shop.example/?visitor_id=evil&a=b",
                        "shop.example")
        response = client.get(f"/r/{referrer[1]}")
        visitor = clicks(app)[0].visitor_id
        assert response.location == f"https://shop.example/?a=b&visitor_id={visitor}"

    def test_without_destination_the_landing_page(self, client, program, referrer):
        response = client.get(f"/r/{referrer[1]}")
        assert response.status_code == 302
        assert response.location == f"/join/{referrer[1]}"

    def test_the_landing_page_under_the_apps_mount_point(self, client, program, referrer):
        for mount in ("/refer", "", "/other"):
            response = client.get(f"/r/{referrer[1]}", environ_overrides={"SCRIPT_NAME": mount})
            assert response.location == f"{mount}/join/{referrer[1]}"

    def test_code_is_case_insensitive(self, client, program, referrer):
        response = client.get(f"/r/{referrer[1].lower()}")
        assert response.location == f"/join/{referrer[1]}"

    def test_a_destination_off_the_allowed_domain_is_never_used(self, app, client, program,
                                                                 referrer):
        set_destination(app, program, "https://shop.example@evil.example/", "shop.example")
        response = client.get(f"/r/{referrer[1]}")
        assert response.location == f"/join/{referrer[1]}"
        set_destination(app, program, "//evil.example/", "shop.example")
        assert client.get(f"/r/{referrer[1]}").location == f"/join/{referrer[1]}"

    def test_unknown_code_goes_home_without_a_click(self, app, client, program):
        response = client.get("/r/NOSUCHCODE")
        assert response.status_code == 302
        assert response.location == "/"
        assert "Set-Cookie" not in response.headers
        assert clicks(app) == []

    def test_unknown_code_goes_to_the_default_destination(self, client, shop):
        response = client.get("/r/NOSUCHCODE")
        assert response.location == "https://shop.example/welcome?ref=1#top"

    def test_security_headers(self, client, shop, referrer):
        headers = client.get(f"/r/{referrer[1]}").headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in headers["Permissions-Policy"]
        assert headers.get_all("X-Frame-Options") == ["DENY"]


class TestVisitorCookie:
    def test_signed_httponly_lax_for_the_attribution_window(self, app, client, shop, referrer):
        response = client.get(f"/r/{referrer[1]}")
        morsel = visitor_cookie(response)["rv"]
        assert morsel["httponly"] and morsel["samesite"] == "Lax"
        assert morsel["max-age"] == str(30 * 86400)
        loads = URLSafeSerializer(app.config["SECRET_KEY"], salt="visitor-id").loads
        assert loads(morsel.value) == clicks(app)[0].visitor_id

    def test_a_returning_visitor_keeps_their_id(self, app, client, shop, referrer):
        client.set_cookie("rv", signed_visitor(app, "returning-visitor"))
        response = client.get(f"/r/{referrer[1]}")
        assert response.location.endswith("visitor_id=returning-visitor#top")
        assert [c.visitor_id for c in clicks(app)] == ["returning-visitor"]

    @pytest.mark.parametrize("forged", ["tampered.sig", "x" * 40, 42])
    def test_a_forged_or_odd_cookie_gets_a_new_id(self, app, client, shop, referrer, forged):
        value = forged if forged == "tampered.sig" else signed_visitor(app, forged)
        client.set_cookie("rv", value)
        client.get(f"/r/{referrer[1]}")
        visitor = clicks(app)[0].visitor_id
        assert visitor not in (forged, "tampered")
        assert 0 < len(visitor) <= 32


class TestCookieWriting:
    def test_signed_as_the_serializer_signs(self, app):
        with app.app_context():
            for visitor in ("ZDzJCKn5byfBiTbXCBwuyL", "é\"x"):
                assert sign_visitor_id(visitor) == signed_visitor(app, visitor)
            loads = URLSafeSerializer(app.config["SECRET_KEY"], salt="visitor-id").loads
            assert loads(sign_visitor_id("a" * 32)) == "a" * 32  # dumps would compress it

    def test_written_as_dump_cookie_writes_it(self, app):
        with app.app_context():
            written = visitor_cookie_header("ZDzJCKn5byfBiTbXCBwuyL", 30)
            expected = dump_cookie("rv", sign_visitor_id("ZDzJCKn5byfBiTbXCBwuyL"),
                                   max_age=30 * 86400, httponly=True, samesite="Lax",
                                   secure=app.config["SESSION_COOKIE_SECURE"])

        def without_expires(cookie):
            return re.sub(r"Expires=[^;]+", "", cookie)

        assert without_expires(written) == without_expires(expected)


class TestClick:
    def test_recorded_with_its_details(self, app, client, shop, referrer):
        before = datetime.now(UTC)
        client.get(f"/r/{referrer[1]}?s=email", headers={
            "User-Agent": UA, "Referer": "https://News.Example./post/1"})
        (click,) = clicks(app)
        with app.app_context():
            assert click.ip_hash == hash_ip("127.0.0.1")
        assert click.referrer_id == referrer[0]
        assert click.user_agent == UA
        assert click.referrer_host == "news.example"
        assert click.channel == "email"
        assert before - timedelta(seconds=1) <= click.created_at <= datetime.now(UTC)
        assert len(click.uid) <= 32

    def test_unknown_channel_and_missing_headers_are_stored_as_none(self, app, client, shop,
                                                                    referrer):
        client.get(f"/r/{referrer[1]}?s=<script>", headers={"User-Agent": ""})
        (click,) = clicks(app)
        assert (click.channel, click.user_agent, click.referrer_host) == (None, None, None)

    def test_a_referrers_own_click_is_not_counted(self, app, client, shop, referrer):
        with client.session_transaction() as session:
            session["customer_id"] = referrer[0]
        response = client.get(f"/r/{referrer[1]}")
        assert response.status_code == 302
        assert "rv=" in response.headers["Set-Cookie"]
        assert clicks(app) == []

    def test_another_signed_in_customer_is_counted(self, app, client, shop, referrer):
        with client.session_transaction() as session:
            session["customer_id"] = referrer[0] + 1000
        client.get(f"/r/{referrer[1]}")
        assert len(clicks(app)) == 1


class TestWithRedis:
    @pytest.fixture
    def redis(self, app, redis_url):
        """The app's clicks go to the test Redis, each sent before the redirect answers."""
        connection = Redis.from_url(redis_url)
        real = app.extensions["rewards.redis"]
        app.extensions["rewards.redis"] = connection
        yield connection
        app.extensions["rewards.redis"] = real

    def test_the_click_waits_in_the_stream_until_the_flush(self, app, client, shop, referrer,
                                                           redis):
        client.get(f"/r/{referrer[1]}?s=qr", headers={"User-Agent": UA})
        assert redis.xlen(STREAM) == 1
        assert clicks(app) == []
        with app.app_context():
            assert flush_clicks() == 1
        (click,) = clicks(app)
        assert (click.channel, click.user_agent, click.referrer_id) == ("qr", UA, referrer[0])
        assert redis.xlen(STREAM) == 0

    def test_own_click_never_reaches_the_stream(self, app, client, shop, referrer, redis):
        with client.session_transaction() as session:
            session["customer_id"] = referrer[0]
        client.get(f"/r/{referrer[1]}")
        assert not redis.exists(STREAM)


def handed_on(environ, start_response):
    """Behind the lane in the parity test: what the lane passes on shows as a 500."""
    start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])
    return [b"the lane handed the request on"]


CLICK_FIELDS = ("program_id", "code_id", "referrer_id", "visitor_id", "ip_hash", "user_agent",
                "referrer_host", "channel")


class TestLane:
    @pytest.mark.parametrize(("destination", "visitor", "signed_in", "mount"), [
        (True, "same-visitor", None, ""),
        (False, None, None, "/refer"),
        (True, None, "the referrer", ""),
        (False, "same-visitor", "another customer", ""),
    ], ids=["returning visitor to the destination", "new visitor to the landing page",
            "the referrer's own click", "another customer signed in"])
    def test_lane_and_view_give_the_same_answer(self, app, program, referrer, destination,
                                                visitor, signed_in, mount):
        if destination:
            set_destination(app, program, "https://shop.example/welcome?ref=1#top",
                            "shop.example")
        customer = {None: None, "the referrer": referrer[0],
                    "another customer": referrer[0] + 1000}[signed_in]
        loads = URLSafeSerializer(app.config["SECRET_KEY"], salt="visitor-id").loads

        def answer(wsgi_app):
            """The answer and the click it recorded, the visitor id written as <visitor>."""
            client = app.test_client()
            if visitor:
                client.set_cookie("rv", signed_visitor(app, visitor))
            if customer:
                with client.session_transaction() as session:
                    session["customer_id"] = customer
            before = len(clicks(app))
            app.wsgi_app = wsgi_app
            try:
                response = client.get(
                    f"/r/{referrer[1]}?s=x&s=qr", environ_overrides={"SCRIPT_NAME": mount},
                    headers={"User-Agent": UA, "Referer": "https://News.Example./post/1"})
            finally:
                app.wsgi_app = lane
            cookie = visitor_cookie(response)["rv"]
            visitor_id = loads(cookie.value)
            assert visitor_id == (visitor or visitor_id)

            def generic(text):
                return text.replace(visitor_id, "<visitor>") if isinstance(text, str) else text

            headers = sorted((key, generic(value)) for key, value in response.headers
                             if key != "Set-Cookie")
            recorded = [{field: generic(getattr(click, field)) for field in CLICK_FIELDS}
                        for click in clicks(app)[before:]]
            return (response.status, generic(response.get_data(as_text=True)), headers,
                    {key: cookie[key] for key in ("max-age", "path", "httponly", "secure",
                                                  "samesite")},
                    recorded)

        lane = app.wsgi_app
        by_lane = answer(RedirectLane(app, handed_on))
        by_flask = answer(lane.wsgi_app)
        assert by_lane == by_flask
        status, _, headers, _, recorded = by_lane
        assert status == "302 FOUND"
        assert dict(headers)["Location"] == (
            "https://shop.example/welcome?ref=1&visitor_id=<visitor>#top" if destination
            else f"{mount}/join/{referrer[1]}")
        assert len(recorded) == (0 if signed_in == "the referrer" else 1)

    def test_a_destination_with_non_ascii_letters_is_sent_as_a_uri(self, app, client, program,
                                                                  referrer):
        set_destination(app, program, "https://shop.example/café?q=été", "shop.example")
        response = client.get(f"/r/{referrer[1]}")
        visitor = clicks(app)[0].visitor_id
        assert response.location == (
            f"https://shop.example/caf%C3%A9?q=%C3%A9t%C3%A9&visitor_id={visitor}"
        )

    def test_a_failed_click_is_handed_to_flask_and_recorded_once(self, app, shop, referrer,
                                                                  monkeypatch):
        calls = []
        record = clicks_module.record_click

        def fail_first(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RedisConnectionError("down for a moment")
            record(*args, **kwargs)

        monkeypatch.setattr(referral_module, "record_click", fail_first)
        response = app.test_client().get(f"/r/{referrer[1]}")
        assert response.status_code == 302
        assert len(calls) == 2  # the lane's try, then the view's
        assert len(clicks(app)) == 1

    @pytest.mark.parametrize("query", ["s=email", "s=email&s=x", "a=1&s=", "s=%65mail",
                                       "s=a+b%20c", "", "s", "x=1;s=qr"])
    def test_reads_a_query_parameter_as_werkzeug_does(self, query):
        environ = EnvironBuilder(query_string=query).get_environ()
        assert referral_module.query_param(environ, "s") == Request(environ).args.get("s")

    @pytest.mark.parametrize("path", ["/r/", "/r/CODE/extra", "/rx/CODE"])
    def test_other_paths_are_left_to_flask(self, client, path):
        assert client.get(path).status_code == 404


class TestClickSender:
    @pytest.fixture
    def redis(self, redis_url):
        return Redis.from_url(redis_url)

    def test_sends_queued_clicks_in_one_batch(self, redis):
        sender = ClickSender(redis, STREAM, seconds=60)
        for n in range(3):
            sender.add(f'{{"n": {n}}}')
        assert redis.xlen(STREAM) == 0
        assert sender.flush() == 3
        assert sent(redis) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert sender.flush() == 0

    @pytest.mark.parametrize("payload", ['{"é": "ü\\n"}', "x" * 70_000])
    def test_a_click_arrives_as_it_was_queued(self, redis, payload):
        sender = ClickSender(redis, STREAM, seconds=60)
        sender.add(payload)
        sender.flush()
        assert sent(redis) == [payload.encode()]

    def test_its_thread_sends_within_the_interval(self, redis):
        sender = ClickSender(redis, STREAM, seconds=0.01)
        sender.add("{}")
        deadline = time.monotonic() + 5
        while redis.xlen(STREAM) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        sender.close()
        assert redis.xlen(STREAM) == 1

    def test_what_is_queued_is_sent_at_exit(self, redis, redis_url):
        script = (
            "from redis import Redis\n"
            "from rewards.attribution.click_sender import ClickSender\n"
            f"sender = ClickSender(Redis.from_url({redis_url!r}), {STREAM!r}, seconds=60)\n"
            "sender.add('at exit')\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert sent(redis) == [b"at exit"]

    def test_a_fork_sends_through_its_own_thread(self, redis):
        sender = ClickSender(redis, STREAM, seconds=60)
        sender.add("parent")  # starts the parent's thread, which waits a minute
        sender.flush()
        pid = os.fork()
        if pid == 0:  # the child: only its own thread can send within the 5 seconds
            status = 1
            try:
                sender.seconds = 0.01
                sender.add("child")
                deadline = time.monotonic() + 5
                while redis.xlen(STREAM) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                status = 0 if redis.xlen(STREAM) == 2 else 1
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        sender.close()
        assert os.waitstatus_to_exitcode(status) == 0
        assert sent(redis) == [b"parent", b"child"]

    def test_keeps_clicks_while_redis_is_down_and_logs_what_it_drops(self, redis, caplog):
        down = Redis(port=1, retry=Retry(NoBackoff(), 0))  # nobody listens on port 1
        sender = ClickSender(down, STREAM, seconds=60, limit=3)
        for n in range(2):
            sender.add(str(n))
        with caplog.at_level(logging.WARNING):
            assert sender.flush() == 0
            sender.add("2")
            sender.add("3")
            assert sender.flush() == 0
        assert "dropped the 1 oldest clicks" in caplog.text
        sender.redis = redis
        assert sender.flush() == 3
        assert sent(redis) == [b"1", b"2", b"3"]

    @pytest.mark.parametrize(("redis", "seconds", "batching"), [
        (True, 0.05, True), (True, 0, False), (False, 0.05, False)])
    def test_only_with_redis_and_an_interval(self, redis, seconds, batching):
        bare = Flask(__name__)
        bare.config["CLICK_FLUSH_SECONDS"] = seconds
        bare.extensions["rewards.redis"] = Redis() if redis else None  # never connects
        clicks_module.init_app(bare)
        assert isinstance(bare.extensions["rewards.click_sender"], ClickSender) is batching


def sent(redis) -> list[bytes]:
    """The clicks in the stream, oldest first."""
    return [fields[b"c"] for _, fields in redis.xrange(STREAM)]
