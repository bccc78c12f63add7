"""Outgoing e-mail: the outbox (``mail_message``), its SMTP sender and the embedded stack's sink.

docs/mail.md tells how a message is delivered exactly once in effect.
"""
