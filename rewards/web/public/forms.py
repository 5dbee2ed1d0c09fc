from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from rewards.web.auth.forms import SignupForm


class FriendSignupForm(SignupForm):
    """The landing page's signup: the same fields as /signup."""


class CodeForm(FlaskForm):
    """A friend who was told a code rather than sent a link types it here."""

    class Meta:
        csrf = False  # a GET form that only navigates

    code = StringField("Referral code", validators=[DataRequired(), Length(max=32)])
