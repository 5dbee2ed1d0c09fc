"""`charge.refunded`: the new part of a charge's cumulative refund, recorded once."""



from rewards.ledger.refunds import record_refund
from rewards.money import format_money
from rewards.stripe.batch import BadEvent, Batch, ref_id, stripe_conversion, waiting


def charge_refunded(event: dict, obj: dict, batch: Batch):
    keys = [ref_id(obj.get("payment_intent")), ref_id(obj.get("invoice"))]
    conversion = stripe_conversion(keys)
    if conversion is None:
        return waiting(keys)
    charge_id = ref_id(obj.get("id")) or "charge"
    refunded = obj.get("amount_refunded")
    if isinstance(refunded, bool) or not isinstance(refunded, int) or refunded < 0:
        raise BadEvent("The charge has no valid amount_refunded.", field="amount_refunded")
    # amount_refunded is cumulative: what is new is what exceeds what is recorded, so a
    # repeat or an older event refunds nothing more.
    amount = min(refunded, conversion.amount) - conversion.refunded_amount
    if amount <= 0:
        return ("processed", f"Nothing more to refund on {conversion.order_id}: "
                f"{format_money(conversion.refunded_amount, conversion.currency)} "
                "is already refunded.", conversion.order_id, keys)
    record_refund(conversion, amount, external_id=f"{charge_id}:{refunded}", commit=False)
    return ("processed", f"Refunded {format_money(amount, conversion.currency)} of the "
            f"purchase {conversion.order_id}.", conversion.order_id, keys)
