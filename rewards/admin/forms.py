from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional, StopValidation

from ..services.policy_drafts import MAX_DRAFT_CHARS, MAX_PREVIEW_FRIENDS


class ProgramForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    window_days = IntegerField("Attribution window (days)",
                               validators=[DataRequired(), NumberRange(1, 365)])
    attribution = SelectField("Credit goes to", choices=[
        SelectChoice("last", "the last click"), SelectChoice("first", "the first click")])
    landing_headline = StringField("Landing page headline", validators=[Length(max=200)])
    landing_offer = TextAreaField("The offer, as the friend reads it",
                                  validators=[Length(max=2000)])
    destination_url = StringField(
        "Destination after a click", validators=[Optional(), URL(), Length(max=500)],
        description="Leave empty to send friends to the hosted landing page.",
    )
    allowed_domain = StringField(
        "Allowed domain", validators=[Optional(), Length(max=253)],
        description="Destinations must be on this domain or its subdomains.",
    )


class VanityCodeForm(FlaskForm):
    code = StringField("Vanity code", validators=[DataRequired(), Length(min=3, max=32)])


class PolicyDraftForm(FlaskForm):
    """The policy editor: the draft's JSON text (saved even when invalid)."""

    document = TextAreaField("Policy document (JSON)", validators=[Length(max=MAX_DRAFT_CHARS)])


def _friend_count(form, field) -> None:
    """One clear message for a missing, unparsable or out-of-range count."""
    if field.data is None or not 0 <= field.data <= MAX_PREVIEW_FRIENDS:
        field.errors[:] = []
        raise StopValidation(f"Give a whole number from 0 to {MAX_PREVIEW_FRIENDS:,}.")


class PolicyPreviewForm(FlaskForm):
    """What to preview the draft on; posted in the same <form> as the editor."""

    class Meta:
        csrf = False  # the editor form in the same <form> carries the token

    amount = StringField("Purchase amount", validators=[DataRequired(message="Give an amount."),
                                                        Length(max=24)])
    purchase = SelectField("Purchase", choices=[
        SelectChoice("first", "The friend's first purchase"),
        SelectChoice("repeat", "A repeat purchase")])
    rewarded_friends = IntegerField("Rewarded referrals the referrer already has", default=0,
                                    validators=[_friend_count])
