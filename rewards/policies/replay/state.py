"""The draft's lines as the ledger would hold them mid-replay.

Each referrer's `History` grows as draft lines are decided: one more line and its amount
for the month (UTC calendar month of the purchase) and for life, and a newly rewarded
friend at the end of the order. Refunds reverse draft lines pro rata on the cumulative
refunded amount; a line reversed in full leaves the history, and a friend left without a
live referrer line leaves the order, as in the ledger. (After payment the ledger claws
back instead and keeps the line; a draft has no payments, so it reverses.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rewards.policies.evaluate import History
from rewards.policies.rounding import pro_rata

Month = tuple[int, int]  # (year, month)


class ReferrerHistory:
    """One referrer's history in one currency, as the ledger would hold it mid-replay."""

    __slots__ = ("friends", "friend_lines", "month", "month_count", "month_amount",
                 "life_count", "life_amount", "_history")

    def __init__(self, month: Month) -> None:
        self.friends: list[int] = []  # ordered by first live (non-bonus) referrer line
        self.friend_lines: dict[int, int] = {}  # friend -> live non-bonus referrer lines
        self.month = month
        self.month_count = self.month_amount = 0
        self.life_count = self.life_amount = 0
        self._history: History | None = None

    def history(self, month: Month) -> History:
        if month != self.month:  # purchases come in time order: a later month starts empty
            self.month, self.month_count, self.month_amount = month, 0, 0
            self._history = None
        if self._history is None:
            self._history = History(tuple(self.friends), self.month_count, self.month_amount,
                                    self.life_count, self.life_amount)
        return self._history

    def add_line(self, friend_id: int, amount: int, bonus: bool) -> None:
        self.month_count += 1
        self.month_amount += amount
        self.life_count += 1
        self.life_amount += amount
        if not bonus:
            count = self.friend_lines.get(friend_id, 0)
            if not count:
                self.friends.append(friend_id)
            self.friend_lines[friend_id] = count + 1
        self._history = None

    def reverse(self, friend_id: int, month: Month, share: int, whole: bool,
                bonus: bool) -> None:
        this_month = month == self.month
        self.life_amount -= share
        if this_month:
            self.month_amount -= share
        if whole:
            self.life_count -= 1
            if this_month:
                self.month_count -= 1
            if not bonus:
                left = self.friend_lines[friend_id] - 1
                self.friend_lines[friend_id] = left
                if not left:
                    self.friends.remove(friend_id)
        self._history = None


class DraftLine:
    """A draft line of a refunded purchase, kept to apply its refunds to the history."""

    __slots__ = ("state", "friend", "month", "amount", "bonus", "reversed")

    def __init__(self, state: ReferrerHistory | None, friend: int, month: Month,
                 amount: int, bonus: bool) -> None:
        self.state = state  # the referrer's history; None for the friend's own line
        self.friend = friend
        self.month = month
        self.amount = amount
        self.bonus = bonus
        self.reversed = 0


class DraftLedger:
    """Every referrer's history, the friends' live friend lines, and the refunds.

    `refunds` is (conversion id, cumulative refunded amount, recorded at) in the order
    they were recorded; `refunds_until` applies them as the replay reaches them.
    """

    __slots__ = ("referrers", "first_month", "friend_lines", "refunds", "next_refund",
                 "refunded", "pending")

    def __init__(self, referrers: dict[tuple[int, str], ReferrerHistory], first_month: Month,
                 refunds: Sequence[tuple[int, int, datetime]]) -> None:
        self.referrers = referrers  # (referrer, currency) -> its history
        self.first_month = first_month
        self.friend_lines: dict[int, int] = {}  # friend -> live draft friend lines
        self.refunds = refunds
        self.next_refund = 0
        self.refunded: dict[int, tuple[int, list[DraftLine]]] = {}  # conversion -> (amount, lines)
        self.pending: dict[int, int] = {}  # conversion not replayed yet -> cumulative

    def referrer(self, key: tuple[int, str]) -> ReferrerHistory:
        """The history of (referrer, currency); empty when it had no lines before."""
        state = self.referrers.get(key)
        if state is None:
            state = self.referrers[key] = ReferrerHistory(self.first_month)
        return state

    def friend_rewarded(self, friend: int) -> bool:
        return self.friend_lines.get(friend, 0) > 0

    def refunds_until(self, moment: datetime | None) -> None:
        """Apply the refunds recorded up to `moment` (None when there are no refunds)."""
        refunds = self.refunds
        while self.next_refund < len(refunds) and refunds[self.next_refund][2] <= moment:
            refund_of, cumulative, _ = refunds[self.next_refund]
            self.next_refund += 1
            if refund_of in self.refunded:
                self._refund(refund_of, cumulative)
            else:
                self.pending[refund_of] = cumulative

    def add(self, state: ReferrerHistory | None, friend: int, month: Month, value: int,
            bonus: bool, lines: list[DraftLine] | None) -> None:
        """One draft line: a referrer's (`state`) or the friend's own (None). `lines` keeps
        it for the refunds of its purchase when the purchase has any."""
        if state is not None:
            state.add_line(friend, value, bonus)
        else:
            self.friend_lines[friend] = self.friend_lines.get(friend, 0) + 1
        if lines is not None:
            lines.append(DraftLine(state, friend, month, value, bonus))

    def refunded_lines(self, conversion_id: int, amount: int) -> list[DraftLine]:
        """Where to keep the draft lines of a refunded purchase of `amount`."""
        lines: list[DraftLine] = []
        self.refunded[conversion_id] = (amount, lines)
        return lines

    def replayed(self, conversion_id: int) -> None:
        """Apply a refund that was recorded before its purchase was replayed."""
        if conversion_id in self.pending:
            self._refund(conversion_id, self.pending.pop(conversion_id))

    def _refund(self, conversion_id: int, cumulative: int) -> None:
        amount, lines = self.refunded[conversion_id]
        for line in lines:
            target = pro_rata(line.amount, cumulative, amount)
            share = target - line.reversed
            if share <= 0:
                continue
            line.reversed = target
            whole = target >= line.amount
            if line.state is not None:
                line.state.reverse(line.friend, line.month, share, whole, line.bonus)
            elif whole:
                self.friend_lines[line.friend] -= 1
