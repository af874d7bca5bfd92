"""Which ports a stack listens on, and whether they are free."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from services.config import Settings
from tools.stack.errors import StackError
from tools.stack.settings import StackSettings

LOOPBACK = "127.0.0.1"
POSTGRES_DEFAULT_PORT = 5432


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` as a pair; Kafka bootstrap strings here always name one broker."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise StackError(f"expected host:port for the Kafka bootstrap address, got {address!r}")
    return host, int(port)


def kafka_port(settings: Settings) -> int:
    """The broker's client port, taken from settings.kafka_bootstrap."""
    return split_host_port(settings.kafka_bootstrap)[1]


def controller_port(settings: StackSettings) -> int:
    """The KRaft controller port: the configured one, else the client port + 1."""
    return settings.kafka_controller_port or kafka_port(settings) + 1


def postgres_port(settings: Settings) -> int:
    """The port in settings.database_url (5432 when the URL names none)."""
    return urlsplit(settings.database_url).port or POSTGRES_DEFAULT_PORT


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_pair() -> int:
    """A free port p whose neighbour p + 1 is free too (Kafka client + controller port)."""
    while True:
        port = free_port()
        if port < 65535 and not port_in_use(port + 1):
            return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when something already listens on host:port.

    SO_REUSEADDR makes the bind ignore TIME_WAIT leftovers of a stack that just stopped.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def require_free(port: int, purpose: str, setting: str) -> None:
    """Fail early, naming the port, when another program already holds it."""
    if port_in_use(port):
        raise StackError(
            f"port {port} on {LOOPBACK} (wanted for {purpose}) is already in use by another "
            f"process. Stop that process or choose another port with {setting}."
        )
