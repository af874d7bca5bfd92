"""A local Kafka + PostgreSQL stack for development and tests, without Docker."""

from tools.stack.errors import StackError
from tools.stack.launcher import (
    down,
    isolated_settings,
    print_progress,
    register_service,
    run_foreground,
    status,
    unregister_service,
    up,
)
from tools.stack.ports import free_port
from tools.stack.settings import StackSettings
from tools.stack.state import StackInfo

__all__ = [
    "StackError",
    "StackInfo",
    "StackSettings",
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
