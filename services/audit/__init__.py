"""Auditors' tools: the hash chain's verification, signed checkpoints and consent receipts."""
