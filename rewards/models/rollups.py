"""Daily rollups that the marketing dashboard reads instead of the raw event tables.

Each row is a recount of one program's day (UTC) from the raw rows, rebuilt whole by
`services.rollups` whenever a `RollupMark` says the day changed. Purchases, refunds and
rewards count on the day of the purchase, so a later refund changes that day's row.
"""

from sqlalchemy import BigInteger, Date, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, utcnow


class RollupMark(db.Model):
    """A program's day whose rollups are out of date. Insert-only, so writers never wait
    on each other; the refresh deletes the marks it has seen once it has recounted."""

    __tablename__ = "rollup_marks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    day = mapped_column(Date, nullable=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class DailyTraffic(db.Model):
    """Clicks, visitors and signups of one program's day."""

    __tablename__ = "daily_traffic"

    # Day first in the key: the dashboard reads a range of days, often of all programs.
    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger)
    # A HyperLogLog sketch of the day's visitor ids: sketches merge over any range, so
    # unique visitors over 90 days cost 90 small reads, not a scan of the clicks.
    visitors = mapped_column(LargeBinary, nullable=False)
    signups: Mapped[int] = mapped_column(BigInteger)
    referred_signups: Mapped[int] = mapped_column(BigInteger)
    # Of the referred signups: those that followed a link click, and those whose friend
    # has made a referred purchase since (so conversion rates never pass 100%).
    clicked_signups: Mapped[int] = mapped_column(BigInteger)
    converted_signups: Mapped[int] = mapped_column(BigInteger)


class DailySales(db.Model):
    """Referred purchases of one program's day in one currency."""

    __tablename__ = "daily_sales"

    # Day first in the key: the dashboard reads a range of days, often of all programs.
    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(db.String(3), primary_key=True)
    purchases: Mapped[int] = mapped_column(BigInteger)
    # Friends whose first referred purchase this is: the customers the program acquired.
    new_customers: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[int] = mapped_column(BigInteger)  # gross, minor units
    refunded: Mapped[int] = mapped_column(BigInteger)


class DailyRewards(db.Model):
    """Rewards for one program's day of purchases, by currency and current status."""

    __tablename__ = "daily_rewards"

    # Day first in the key: the dashboard reads a range of days, often of all programs.
    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(db.String(3), primary_key=True)
    status: Mapped[str] = mapped_column(db.String(16), primary_key=True)
    rewards: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # as earned
    reversed: Mapped[int] = mapped_column(BigInteger)  # taken back before payment
    clawed_back: Mapped[int] = mapped_column(BigInteger)  # owed back after payment


class DailyReferrerTally(db.Model):
    """Each referrer's referred purchases and net revenue on one program's day in one
    currency, packed in one tally (`services.tallies`): the top referrers tables read a
    row per day, however many referrers were active on it."""

    __tablename__ = "daily_referrer_tallies"

    # Day first in the key: the dashboard reads a range of days, often of all programs.
    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(db.String(3), primary_key=True)
    tally = mapped_column(LargeBinary, nullable=False)


class DailyHost(db.Model):
    """Clicks of one day by referring host ('' when unknown)."""

    __tablename__ = "daily_hosts"

    # Day first in the key: the dashboard reads a range of days, often of all programs.
    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    host: Mapped[str] = mapped_column(db.String(253), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger)


class DailyChannel(db.Model):
    """Clicks of one day by share channel ('' when none was given). Apart from the hosts,
    so each table has a row per day and value, not per combination of the two."""

    __tablename__ = "daily_channels"

    day = mapped_column(Date, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(db.String(16), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger)
