"""Test support shipped with logwarden: local servers speaking the protocols of the alert channels.

:mod:`logwarden.testing.receivers` needs the ``test`` extras (``aiosmtpd``, ``cryptography``).
It is used by the alerting tests and by the soak benchmark (``bench/soak.py``).
"""
