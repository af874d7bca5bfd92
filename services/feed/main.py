"""Composition root of the feed service (``consent-ledger feed``): the outbox publisher and the
webhook deliverer, each a loop that works while there is work and polls the outbox when idle.
A failed step is retried with exponential backoff; nothing it took is lost (it stays queued)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

import httpx

from projections.db import create_pool
from projections.migrations import apply as apply_migrations
from services.config import Settings
from services.feed.publisher import FeedPublisher
from services.feed.webhooks import CONCURRENCY, WebhookDeliverer
from services.messaging.forgetting import roll_after_ms

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


async def repeat(step: Callable[[], Awaitable[int]], idle_s: float, stop: asyncio.Event) -> None:
    """Run ``step`` until ``stop``: at once again while it finds work, after ``idle_s`` when it
    found none, with a growing delay after a failure."""
    delay = idle_s
    while not stop.is_set():
        try:
            done = await step()
            delay, wait = idle_s, 0.0 if done else idle_s
        except Exception as exc:
            log.warning("feed step failed; retrying", extra={"error": repr(exc)})
            wait, delay = delay, min(max(delay * 2, 0.2), MAX_BACKOFF_S)
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets: a service's loops end, and it cleans up."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Publish the feed and deliver webhooks until ``stop`` (default: SIGINT or SIGTERM)."""
    stop = stop or stop_on_signals()
    await apply_migrations(settings.database_url)
    pool = await create_pool(settings.database_url, max_size=4)
    publisher = FeedPublisher(
        pool,
        settings.kafka_options(),
        settings.feed_topic,
        [str(w.url) for w in settings.feed_webhooks],
        batch_max=settings.feed_batch_max,
        timeout_s=settings.produce_timeout_s,
        resend_after_ms=roll_after_ms(settings.feed_forget_after_s),
    )
    idle_s = settings.feed_poll_interval_ms / 1000
    try:
        async with httpx.AsyncClient(
            timeout=settings.feed_webhook_timeout_s,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        ) as client:
            deliverer = WebhookDeliverer(
                pool,
                settings.feed_webhooks,
                client,
                max_attempts=settings.feed_webhook_max_attempts,
                backoff_s=settings.feed_webhook_backoff_s,
                batch_max=min(settings.feed_batch_max, CONCURRENCY),
            )
            log.info("feed publisher started", extra={"service": "feed"})
            await asyncio.gather(
                repeat(publisher.publish_once, idle_s, stop),
                repeat(deliverer.deliver_once, idle_s, stop),
            )
    finally:
        await publisher.stop()
        await pool.close()
