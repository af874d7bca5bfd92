"""The reference feed consumer: a mail tool's audience kept in sync from the eligibility feed
(docs/mail-tools.md is its manual)."""
