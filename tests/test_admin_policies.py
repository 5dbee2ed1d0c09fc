"""Admin policy pages: the draft editor, its validation, preview, publishing and history."""

import html
import json
import re

import pytest
from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Account, PolicyDraft, PolicyVersion, Program
from rewards.policies import drafts as policy_drafts
from rewards.policies.versions import publish

from .conftest import csrf_token, login

# The example policy of API.md "Policy documents (JSON)".
POLICY = {
    "currency": "usd",
    "hold_days": 30,
    "min_purchase": 2000,
    "purchases": "first",
    "referrer": {"percent_bps": 1000, "cap": 5000},
    "tiers": [{"from": 3, "referrer": {"percent_bps": 1500, "cap": 8000}}],
    "milestones": [{"at": 5, "bonus": 5000}],
    "friend": {"fixed": 500},
    "limits": {"month": {"count": 10, "amount": 50000}, "lifetime": {"count": 100}},
}
INVALID = """{
  "currency": "usd",
  "referrer": {"percent_bps": 1000, "cap": "50"},
  "tiers": [{"from": 1, "referrer": {"fixed": 100}}],
  "bonus": 5
}"""


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def version_count(app, program_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(PolicyVersion.id))
                                 .filter_by(program_id=program_id))


@pytest.fixture
def admin(app, program, make_user):
    """(client, account id, email) of a signed-in admin."""
    email = make_user("admin", email="ada@example.com", name="Ada Admin")
    client = app.test_client()
    assert login(client, email).status_code == 302
    with app.app_context():
        account_id = db.session.scalar(select(Account.id).filter_by(email=email))
    return client, account_id, email


@pytest.fixture
def editor(admin, program):
    """post(action, document, **fields) -> the response, with a fresh CSRF token."""
    client = admin[0]
    path = f"/admin/programs/{program}/policy"

    def post(action: str, document, **fields):
        if not isinstance(document, str):
            document = json.dumps(document, indent=2)
        data = {"csrf_token": csrf_token(client, path), "action": action,
                "document": document, **fields}
        return client.post(path, data=data)

    post.path = path
    return post


def preview(editor, document=POLICY, amount="120.00", purchase="first", friends="0"):
    return editor("preview", document, amount=amount, purchase=purchase,
                  rewarded_friends=friends)


# --------------------------------------------------------------------------- drafts


def test_a_new_program_starts_from_a_starter_policy_in_its_currency(app, admin, program):
    page = text_of(admin[0].get(f"/admin/programs/{program}/policy"))
    assert "No draft saved yet: a starter policy to edit." in page
    assert '"currency": "usd"' in page
    assert "Publish as version 1" in page
    assert "No version is published yet." in page
    with app.app_context():
        starter = policy_drafts.get_draft(db.session.get(Program, program))
        assert starter.source == "starter"
        assert policy_drafts.errors_in(db.session.get(Program, program), starter.text) == []


def test_saving_an_invalid_draft_keeps_it_and_shows_located_errors(app, admin, editor,
                                                                     program):
    response = editor("save", INVALID)
    assert response.status_code == 302
    with app.app_context():
        draft = db.session.scalar(select(PolicyDraft).filter_by(program_id=program))
        assert draft.document == INVALID
        assert draft.updated_by == admin[1]
    page = text_of(admin[0].get(f"/admin/programs/{program}/policy"))
    assert "Draft saved, with 3 problems to fix before publishing." in page
    assert "3 problems to fix before publishing:" in page
    assert "<code>bonus</code> unknown key" in page
    assert "<code>referrer.cap</code> must be a whole number of minor units" in page
    assert "<code>tiers[0].from</code> must be at least 2" in page
    assert '"cap": "50"' in page  # the draft itself, as typed
    assert f"by {admin[2]}" in page
    assert version_count(app, program) == 0


def test_a_json_syntax_error_gives_its_line_and_column(app, admin, editor, program):
    broken = '{\n  "currency": "usd",\n  "referrer": {"fixed": 500}\n  "friend": {}\n}'
    assert editor("save", broken).status_code == 302
    page = text_of(admin[0].get(f"/admin/programs/{program}/policy"))
    assert "<code>line 4, column 3</code> not valid JSON: Expecting ',' delimiter" in page
    with app.app_context():
        assert db.session.scalar(select(PolicyDraft.document)) == broken


def test_a_valid_draft_is_saved_with_its_line_endings_normalized(app, editor, program):
    text = json.dumps(POLICY, indent=2).replace("\n", "\r\n")
    response = editor("save", text)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(PolicyDraft.document)) == text.replace("\r\n", "\n")


def test_a_valid_draft_whose_tiers_can_never_start_says_so(app, admin, editor, program):
    document = {"currency": "usd", "friend": {"fixed": 500},
                "tiers": [{"from": 3, "referrer": {"fixed": 700}}]}
    assert editor("save", document).status_code == 302
    page = text_of(admin[0].get(editor.path))
    assert 'data-testid="draft-status">Valid<' in page
    assert "Valid, but 1 part can never pay:" in page
    assert ("<code>tiers</code> never reached: a friend counts once the referrer has been "
            "rewarded for them, and with no base `referrer` rule nothing is paid before the "
            "3rd friend. Add a base `referrer` rule.") in page
    assert editor("publish", document).status_code == 302  # a caution does not block
    assert version_count(app, program) == 1
    assert editor("save", {**document, "referrer": {"fixed": 100}}).status_code == 302
    assert "can never pay" not in text_of(admin[0].get(editor.path))


# --------------------------------------------------------------------------- publishing


def test_publishing_an_invalid_document_publishes_nothing(app, editor, program):
    response = editor("publish", INVALID)
    assert response.status_code == 422
    page = text_of(response)
    assert "Nothing was published: the draft has 3 problems." in page
    assert "<code>referrer.cap</code> must be a whole number of minor units" in page
    assert "<code>tiers[0].from</code> must be at least 2" in page
    assert "<code>bonus</code> unknown key" in page
    assert version_count(app, program) == 0
    # The work is not lost: it was kept as the draft.
    with app.app_context():
        assert db.session.scalar(select(PolicyDraft.document)) == INVALID


def test_publishing_another_programs_currency_is_refused(app, editor, program):
    response = editor("publish", {**POLICY, "currency": "eur"})
    assert response.status_code == 422
    assert "<code>currency</code> must be the program's currency, usd" in text_of(response)
    assert version_count(app, program) == 0


def test_publishing_a_valid_draft_creates_numbered_versions(app, admin, editor, program):
    client, account_id, _ = admin
    page = text_of(client.get(editor.path))
    assert "Publish as version 1" in page

    response = editor("publish", POLICY)
    assert response.status_code == 302
    assert response.headers["Location"] == editor.path
    page = text_of(client.get(editor.path))
    assert "Published version 1" in page
    assert "Publish as version 2" in page
    assert "Same as version 1" in page

    assert editor("publish", {**POLICY, "hold_days": 14}).status_code == 302
    assert "Published version 2" in text_of(client.get(editor.path))

    with app.app_context():
        versions = db.session.scalars(select(PolicyVersion).filter_by(program_id=program)
                                      .order_by(PolicyVersion.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert [v.published_by for v in versions] == [account_id, account_id]
        assert json.loads(versions[0].document)["hold_days"] == 30
        assert json.loads(versions[1].document)["hold_days"] == 14


def test_publishing_the_current_version_again_publishes_nothing(app, admin, editor, program):
    assert editor("publish", POLICY).status_code == 302
    reordered = json.dumps(dict(reversed(list(POLICY.items()))))
    response = editor("publish", reordered)
    assert response.status_code == 302
    page = text_of(admin[0].get(editor.path))
    assert "The draft is the same as version 1; nothing was published." in page
    assert version_count(app, program) == 1


def test_the_editor_shows_the_published_version_read_only(app, admin, program):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    page = text_of(admin[0].get(f"/admin/programs/{program}/policy"))
    assert "No draft saved yet: this is version 1 as published." in page
    assert "Version 1, published" in page
    assert "by CLI." in page
    assert re.search(r'<pre class="code-block"[^>]*>\{\n  "currency": "usd",', page)


def test_the_history_lists_versions_newest_first_with_their_publisher(app, admin, editor,
                                                                        program):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)  # from the CLI: no account
    assert editor("publish", {**POLICY, "hold_days": 7}).status_code == 302
    response = admin[0].get(f"/admin/programs/{program}/policy/versions")
    assert response.status_code == 200
    page = text_of(response)
    rows = re.findall(r'<tr data-testid="version-(\d+)">(.*?)</tr>', page, re.S)
    assert [number for number, _ in rows] == ["2", "1"]
    assert admin[2] in rows[0][1] and "Live" in rows[0][1]
    assert "CLI" in rows[1][1] and admin[2] not in rows[1][1]
    assert re.search(r"\w{3} \d{2}, \d{4} \d{2}:\d{2} UTC", rows[0][1])
    assert '"hold_days": 7' in rows[0][1] and '"hold_days": 30' in rows[1][1]
    assert rows[0][1].count("<details>") == 1


def test_the_history_of_a_program_without_versions(admin, program):
    page = text_of(admin[0].get(f"/admin/programs/{program}/policy/versions"))
    assert "Nothing published yet." in page


def test_the_program_pages_link_to_the_policy(admin, program):
    for path in ("/admin", f"/admin/programs/{program}"):
        page = text_of(admin[0].get(path))
        assert f'href="/admin/programs/{program}/policy"' in page
    page = text_of(admin[0].get(f"/admin/programs/{program}"))
    assert f'href="/admin/programs/{program}/policy/versions"' in page


def test_unknown_programs_are_404(admin):
    assert admin[0].get("/admin/programs/999/policy").status_code == 404
    assert admin[0].get("/admin/programs/999/policy/versions").status_code == 404


# --------------------------------------------------------------------------- preview


def test_preview_shows_the_sentence_and_each_explanation(app, editor, program):
    response = preview(editor)
    assert response.status_code == 200
    page = text_of(response)
    assert "A $120.00 first purchase by a referrer with no rewarded referrals earns:" in page
    assert "10% of $120.00 = $12.00." in page
    assert "A fixed $5.00 for the referral." in page
    assert "Total: $17.00" in page
    assert "Available after a 30-day hold" in page
    # A preview saves nothing.
    assert "Unsaved changes." in page
    with app.app_context():
        assert db.session.scalar(select(func.count(PolicyDraft.id))) == 0
    assert version_count(app, program) == 0


def test_preview_caps_a_percentage(editor):
    page = text_of(preview(editor, amount="900"))
    assert "10% of $900.00 = $90.00, capped at $50.00." in page


def test_preview_follows_the_tiers_as_rewarded_friends_grow(editor):
    page = text_of(preview(editor, friends="1"))
    assert "A $120.00 first purchase by a referrer with 1 rewarded referral earns:" in page
    assert "10% of $120.00 = $12.00." in page and "Tier from" not in page

    # The 3rd rewarded friend is the first in the tier.
    page = text_of(preview(editor, friends="2"))
    assert "A $120.00 first purchase by a referrer with 2 rewarded referrals earns:" in page
    assert "Tier from the 3rd friend: 15% of $120.00 = $18.00." in page
    assert "Milestone" not in page

    page = text_of(preview(editor, friends="4"))
    assert "A $120.00 first purchase by a referrer with 4 rewarded referrals earns:" in page
    assert "Tier from the 3rd friend: 15% of $120.00 = $18.00." in page
    assert "Milestone bonus for the 5th rewarded friend: $50.00." in page
    assert "Total: $73.00" in page


def test_preview_of_a_purchase_that_earns_nothing_says_why(editor):
    page = text_of(preview(editor, purchase="repeat", friends="4"))
    assert "A $120.00 repeat purchase by a referrer with 4 rewarded referrals earns nothing." \
        in page
    assert "Only the friend's first purchase earns a reward." in page

    page = text_of(preview(editor, amount="15"))
    assert "earns nothing." in page
    assert "The purchase of $15.00 is under the $20.00 minimum." in page


def test_preview_of_a_repeat_purchase_when_all_purchases_earn(editor):
    page = text_of(preview(editor, {**POLICY, "purchases": "all"}, purchase="repeat",
                           friends="3"))
    # The friend is the referrer's 3rd, already rewarded: tier rate, no friend reward.
    assert "Tier from the 3rd friend: 15% of $120.00 = $18.00." in page
    assert "The friend already received their reward." in page


@pytest.mark.parametrize("amount, message", [
    ("", "Give an amount."),
    ("abc", "Give an amount like 120.00."),
    ("-5", "Give an amount like 120.00."),
    ("1e5", "Give an amount like 120.00."),
    ("12.345", "USD amounts have at most 2 decimal places."),
    ("0.00", "The amount must be more than zero."),
    ("99999999999999", "The amount must be at most $10,000,000,000.00."),
])
def test_preview_refuses_bad_amounts_with_422(editor, amount, message):
    response = preview(editor, amount=amount)
    assert response.status_code == 422
    assert message in text_of(response)
    assert "earns" not in text_of(response)


@pytest.mark.parametrize("friends", ["", "lots", "-1", "10001", "2.5"])
def test_preview_refuses_bad_friend_counts_with_422(editor, friends):
    response = preview(editor, friends=friends)
    assert response.status_code == 422
    assert "Give a whole number from 0 to 10,000." in text_of(response)


def test_preview_of_an_invalid_draft_lists_its_problems(editor):
    response = preview(editor, INVALID)
    assert response.status_code == 422
    page = text_of(response)
    assert "Fix the draft's problems to preview it." in page
    assert "<code>referrer.cap</code> must be a whole number of minor units" in page


def test_amounts_follow_the_currencys_minor_unit(app, program):
    with app.app_context():
        assert policy_drafts.parse_amount("120.00", "usd") == 12000
        assert policy_drafts.parse_amount("120", "usd") == 12000
        assert policy_drafts.parse_amount(".5", "usd") == 50
        assert policy_drafts.parse_amount("1200", "jpy") == 1200
        with pytest.raises(policy_drafts.ServiceError, match="whole numbers"):
            policy_drafts.parse_amount("1200.5", "jpy")


def test_a_bad_action_or_an_oversized_draft_is_not_a_500(app, editor, program):
    assert editor("delete", POLICY).status_code == 400
    response = editor("save", " " * 100_001)
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count(PolicyDraft.id))) == 0
    for deep in ("[" * 5000, "[" * 100_000):
        assert editor("publish", deep[:100_000]).status_code == 422
    assert version_count(app, program) == 0


# --------------------------------------------------------------------------- replay, access


def test_the_replay_form_posts_the_draft_and_days(admin, editor, program):
    editor("save", INVALID)
    page = admin[0].get(f"/admin/programs/{program}/policy").get_data(as_text=True)
    action = f'action="/admin/programs/{program}/simulate"'
    form = re.search(r"<form[^>]*" + action + r".*?</form>", page, re.S).group(0)
    assert 'name="csrf_token"' in form
    document = re.search(r'name="document" value="([^"]*)"', form).group(1)
    assert html.unescape(document) == INVALID
    assert re.search(r'name="days" value="30"', form)
    assert "Replay this draft" in form


@pytest.mark.parametrize("role", ["coordinator", "marketing", "customer"])
def test_only_admins_see_the_policy_pages(app, as_role, program, role):
    client = as_role(role)
    for path in (f"/admin/programs/{program}/policy",
                 f"/admin/programs/{program}/policy/versions"):
        assert client.get(path).status_code == 403
    token = csrf_token(client, "/")  # the sign-out form carries one
    for action in ("save", "publish", "preview"):
        response = client.post(f"/admin/programs/{program}/policy", data={
            "csrf_token": token, "action": action, "document": json.dumps(POLICY),
            "amount": "120.00", "purchase": "first", "rewarded_friends": "0"})
        assert response.status_code == 403
    assert version_count(app, program) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(PolicyDraft.id))) == 0


def test_two_first_saves_racing_keep_the_last(app, program, monkeypatch):
    with app.app_context():
        shop = db.session.get(Program, program)
        policy_drafts.save_draft(shop, "first")
        real = policy_drafts._saved
        calls = []

        def stale_then_real(prog):  # the first look misses the draft saved meanwhile
            calls.append(prog.id)
            return None if len(calls) == 1 else real(prog)

        monkeypatch.setattr(policy_drafts, "_saved", stale_then_real)
        assert policy_drafts.save_draft(shop, "second")  # not JSON: errors returned
        assert db.session.scalars(select(PolicyDraft.document)).all() == ["second"]
