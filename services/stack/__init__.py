"""A local Kafka + PostgreSQL stack for development and tests, without Docker."""

from services.stack.errors import StackError
from services.stack.launcher import (
    down,
    isolated_settings,
    print_progress,
    register_service,
    run_foreground,
    status,
    unregister_service,
    up,
)
from services.stack.ports import free_port
from services.stack.state import StackInfo

__all__ = [
    "StackError",
    "StackInfo",
    "down",
    "free_port",
    "isolated_settings",
    "print_progress",
    "register_service",
    "run_foreground",
    "status",
    "unregister_service",
    "up",
]
