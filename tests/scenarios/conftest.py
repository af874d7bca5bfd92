"""The scenario suite runs on the same real stack and fixtures as the integration tests."""

from tests.integration.conftest import intake, pool, projector, settings, stack_settings

__all__ = ["intake", "pool", "projector", "settings", "stack_settings"]
