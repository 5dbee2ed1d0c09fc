"""The admin's forms: program settings, vanity codes, policy drafts and their preview."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import (
    URL,
    DataRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from rewards.money import major_units, parse_major
from rewards.people.programs import MAX_AMOUNT, MAX_VELOCITY
from rewards.policies.drafts import MAX_DRAFT_CHARS, MAX_PREVIEW_FRIENDS


def to_minor(text: str | None, currency: str) -> int | None:
    """"25.50" usd -> 2550; "" -> None. ValueError with a message for people otherwise."""
    minor = parse_major(text, currency)
    if minor is not None and minor > MAX_AMOUNT:
        raise ValueError("That amount is too large.")
    return minor


def to_major(amount: int | None, currency: str) -> str:
    """2550 usd -> "25.50"; None -> ""."""
    return "" if amount is None else major_units(amount, currency)


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
    payout_schedule = SelectField("Payout schedule", choices=[
        SelectChoice("on_demand", "On demand (a coordinator proposes payouts)"),
        SelectChoice("weekly", "Weekly"), SelectChoice("monthly", "Monthly")],
        description="How often payouts are proposed for customers with available rewards.")
    payout_minimum = StringField("Payout minimum", validators=[Length(max=24)])
    second_approval_above = StringField("Second approval above",
                                        validators=[Optional(), Length(max=24)])
    velocity_limit = IntegerField(
        "Velocity limit (signups per code per hour)",
        validators=[DataRequired(message=f"Give a number from 1 to {MAX_VELOCITY:,}."),
                    NumberRange(1, MAX_VELOCITY)],
        description="More signups than this on one code within an hour are flagged for a "
                    "coordinator to look at.")

    def __init__(self, *args, currency: str = "usd", **kwargs):
        self.currency = currency
        super().__init__(*args, **kwargs)
        unit = currency.upper()
        self.payout_minimum.description = (
            f"In {unit}. A payout is proposed once a customer's available rewards reach "
            "it; 0 for no minimum.")
        self.second_approval_above.description = (
            f"In {unit}. Larger payouts need a second, different coordinator to approve "
            "them. Leave empty for one approval always.")

    def _amount(self, field) -> None:
        try:
            to_minor(field.data, self.currency)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_payout_minimum(self, field) -> None:
        self._amount(field)

    def validate_second_approval_above(self, field) -> None:
        self._amount(field)

    def payout_amounts(self) -> dict:
        """The two amounts in minor units, once the form has validated."""
        return {
            "payout_minimum": to_minor(self.payout_minimum.data, self.currency) or 0,
            "second_approval_above": to_minor(self.second_approval_above.data,
                                              self.currency),
        }


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
