"""Stripe: the gateway (the only door to Stripe's API), the webhook signature, the event
inbox and the handlers that turn events into purchases, refunds, disputes and Connect
account changes."""
