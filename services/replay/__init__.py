"""``consent-ledger replay``: rebuild every projection from the start of the ledger topic into a
schema of its own, with the live projector's code, and compare the result with the live tables.
"""
