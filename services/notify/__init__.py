"""Notify: e-mail to units' contacts, once per cause, retried, recorded in a ledger."""
