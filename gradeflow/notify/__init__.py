"""Telling people and other services what happened: e-mail to learners (and, later, webhooks)."""
