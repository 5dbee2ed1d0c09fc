"""Parts of a valid policy that can never pay, for the editor and `publish-policy`."""

from __future__ import annotations

from rewards.policies.policy import Policy
from rewards.policies.wording import ordinal


def cautions(policy: Policy) -> list[str]:
    """Parts of a valid policy that can never pay, each "<location>: <why>".

    Tiers (which start from the 2nd friend at the earliest) and milestones count the
    referrer's rewarded friends: friends the referrer has been rewarded for. Without a
    base `referrer` rule the referrer is never rewarded, so no friend counts and no tier
    or milestone is reached. The document stays valid (documents that were valid stay
    valid); the editor and `publish-policy` say so instead.
    """
    if policy.referrer is not None:
        return []
    found = []
    if policy.tiers:
        first = min(tier.start for tier in policy.tiers)
        found.append(
            f"tiers: never reached: a friend counts once the referrer has been rewarded for "
            f"them, and with no base `referrer` rule nothing is paid before the "
            f"{ordinal(first)} friend. Add a base `referrer` rule.")
    if policy.milestones:
        found.append(
            "milestones: never reached: a milestone bonus comes with a referrer reward, and "
            "with no base `referrer` rule the referrer is never rewarded. Add a base "
            "`referrer` rule.")
    return found
