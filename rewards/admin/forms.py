from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional


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
