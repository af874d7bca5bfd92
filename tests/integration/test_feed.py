"""The eligibility feed on the real stack: what a mail tool sees on the compacted topic, in the
HTTP exports, through webhooks, and in the reference consumer's audience table."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from fastapi import FastAPI, Request, Response

from events.codec import encode
from projections.feed import FeedChange, FeedEntry, FeedView, feed_view
from projections.records import LedgerRecord
from projections.rows import state_to_json
from projections.store import SubscriberStore
from services.config import Settings, Webhook
from services.feed.main import serve as serve_feed
from services.feed.publisher import FeedPublisher
from services.messaging.topics import ensure_topics
from tests.integration.conftest import (
    append_events,
    consent_stream,
    eventually,
    read_topic,
    serve,
    stored_states,
    wait_projected,
)
from tests.samples import feed_entry, given_event, given_json, withdrawn_json
from tests.scenarios.test_seed_notice import event, post
from tools.audience.main import run as run_audience
from tools.audience.settings import AudienceSettings
from tools.audience.store import AudienceStore, FeedRecord
from tools.stack.jars import broker_classpath
from tools.stack.kafka import kafka_paths
from tools.stack.ports import free_port
from tools.stack.settings import StackSettings
from tools.stack.tools import require_java

pytestmark = pytest.mark.integration

SECRET = "a-long-shared-webhook-secret"


@contextlib.asynccontextmanager
async def running(job: Any) -> AsyncIterator[None]:
    """Run ``job(stop)`` (a service loop) in this event loop for the block's duration."""
    stop = asyncio.Event()
    task = asyncio.create_task(job(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def feed(settings: Settings) -> Any:
    return running(lambda stop: serve_feed(settings, stop))


async def latest_on_topic(settings: Settings) -> dict[str, FeedEntry | None]:
    """What a compacted topic keeps: the last record per key (``None``: tombstone)."""
    latest: dict[str, FeedEntry | None] = {}
    for record in await read_topic(settings, settings.feed_topic):
        assert record.key is not None
        value = FeedEntry.model_validate_json(record.value) if record.value else None
        latest[record.key.decode()] = value
    return latest


async def wait_feed(settings: Settings, check: Any) -> dict[str, FeedEntry | None]:
    seen: dict[str, FeedEntry | None] = {}

    async def holds() -> bool:
        nonlocal seen
        seen = await latest_on_topic(settings)
        return bool(check(seen))

    await eventually(holds, within=90)
    return seen


def view_of(entry: FeedEntry | None) -> FeedView:
    """The view a published entry carries, to compare with the projection's."""
    if entry is None:
        return None
    purposes = sorted(entry.purposes.items())
    return entry.email, tuple((n, p.eligible, p.reason, p.valid_until) for n, p in purposes)


def eligible_for(entry: FeedEntry | None, purpose: str = "newsletter") -> bool:
    return entry is not None and entry.purposes[purpose].eligible


async def test_feed_shows_withdrawal_objection_restriction_and_erasure(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """Each reason a person gives not to be mailed reaches the feed; erasure as a tombstone."""
    people = ["f-keep", "f-withdraw", "f-object", "f-restrict", "f-erase"]
    async with feed(settings):
        for subject in people:
            await post(intake, given_json(subject))
        before = await wait_feed(settings, lambda s: all(eligible_for(s.get(p)) for p in people))
        assert before["f-keep"] is not None
        assert before["f-keep"].email == "f-keep@example.com"

        later = {"occurred_at": "2024-03-05T12:00:00+02:00"}
        await post(intake, withdrawn_json("f-withdraw"))
        objection = {"scope": "direct_marketing", "channel": "phone"}
        await post(intake, event("objection.received", "f-object", objection,
                                 purpose="newsletter", **later))  # fmt: skip
        await post(intake, event("restriction.applied", "f-restrict",
                                 {"grounds": "accuracy_contested"}))  # fmt: skip
        await post(intake, event("subject.erased", "f-erase", {"grounds": "request"}))

        def settled(s: dict[str, FeedEntry | None]) -> bool:
            return (
                "f-erase" in s
                and s["f-erase"] is None
                and not any(eligible_for(s[p]) for p in people[1:4])
            )

        after = await wait_feed(settings, settled)

    reasons = {p: e.purposes["newsletter"] for p in people[:4] if (e := after[p]) is not None}
    assert reasons["f-keep"].eligible
    assert reasons["f-withdraw"].reason.startswith("consent withdrawn on 2024-03-05")
    assert reasons["f-object"].reason.startswith("objected on 2024-03-05")
    assert reasons["f-restrict"].reason.startswith("processing restricted since")
    for person in people[1:4]:
        entry = after[person]
        assert entry is not None
        assert entry.email is None, "no address once nothing may be sent"
    assert after["f-erase"] is None
    tombstone = [r for r in await read_topic(settings, settings.feed_topic) if not r.value]
    assert [(r.key, r.headers) for r in tombstone] == [
        (b"f-erase", {"version": str(await version_of(settings, "f-erase")).encode()})
    ], "a tombstone has no value, so its version travels in a header"

    lines = (await projector.get("/v1/suppressions")).text.splitlines()
    suppressed = {(row["subject_id"], row["reason"]) for row in map(orjson.loads, lines)}
    assert suppressed == {
        ("f-withdraw", "withdrawal"),
        ("f-object", "objection"),
        ("f-restrict", "restriction"),
        ("f-erase", "erasure"),
    }


async def version_of(settings: Settings, subject: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        version: int = await conn.fetchval(
            "SELECT version FROM subscribers WHERE subject_id = $1", subject
        )
    finally:
        await conn.close()
    return version


async def test_only_a_change_a_mail_tool_sees_is_published(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: Any
) -> None:
    """A repeated sign-up on the same day changes nothing in the feed: nothing is queued."""
    async with feed(settings):
        await post(intake, given_json("f-same"))
        await wait_feed(settings, lambda s: eligible_for(s.get("f-same")))
        await post(intake, given_json("f-same"))

        async def projected() -> bool:
            version = await pool.fetchval(
                "SELECT version FROM subscribers WHERE subject_id = 'f-same'"
            )
            return bool(version == 2)

        await eventually(projected)
        # Queued in the projection's transaction, so a change would be in the outbox or on the
        # topic now (the publisher deletes a row only after Kafka acknowledged it).
        queued = await pool.fetchval("SELECT count(*) FROM feed_outbox")
        published = await read_topic(settings, settings.feed_topic)
    assert queued == 0
    assert len(published) == 1


def audience_of(settings: Settings, database_url: str | None = None) -> AudienceSettings:
    """A test's settings for the reference consumer, with a database of its own when given."""
    return AudienceSettings.model_validate(
        {**settings.model_dump(), "audience_database_url": database_url}
    )


async def audience_now(database_url: str) -> set[tuple[str, str]]:
    """The reference consumer's newsletter audience as of now (empty before it made its table)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT subject_id, email FROM audience_members WHERE purpose = 'newsletter'"
            " AND (valid_until IS NULL OR valid_until > now())"
        )
    except asyncpg.UndefinedTableError:
        return set()
    finally:
        await conn.close()
    return {(r["subject_id"], r["email"]) for r in rows}


async def eligible_in_table(pool: Any) -> set[tuple[str, str]]:
    """Who the subscribers table says may get the newsletter now (the read API's rule)."""
    now = datetime.now(UTC)
    states = [state_to_json(state, now) for state in (await stored_states(pool)).values()]
    return {
        (s["subject_id"], s["email"]) for s in states if s["purposes"]["newsletter"]["eligible"]
    }


async def test_the_audience_follows_the_feed_and_a_new_consumer_rebuilds_it(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: Any
) -> None:
    """A running reference consumer applies upserts, then removals and tombstones; a NEW one on
    an empty database, reading the compacted topic from the start, gets exactly the current
    list: the same as the mailing-list export and as the subscribers table (as of now)."""
    subjects = [f"m-{n:03d}" for n in range(40)]
    blocks = []
    for n, subject in enumerate(subjects):
        if n % 3 == 0:
            blocks.append(withdrawn_json(subject))
        if n % 4 == 1:
            scope = {"scope": "direct_marketing", "channel": "email"}
            blocks.append(event("objection.received", subject, scope, purpose="newsletter",
                                occurred_at="2024-03-06T10:00:00Z"))  # fmt: skip
        if n % 5 == 2:
            blocks.append(event("subject.erased", subject, {"grounds": "request"}))
        if n % 7 == 3:
            blocks.append(event("restriction.applied", subject, {"grounds": "unlawful_processing"}))

    async def drained(count: int) -> None:
        async def done() -> bool:
            projected = await pool.fetchval("SELECT count(*) FROM ledger_events")
            queued = await pool.fetchval("SELECT count(*) FROM feed_outbox")
            return bool(projected >= count and queued == 0)

        await eventually(done, within=90)

    async with feed(settings), running(lambda stop: run_audience(audience_of(settings), stop)):
        for chunk in ([given_json(s) for s in subjects], blocks):
            answer = await intake.post("/v1/events/batch", json={"events": chunk})
            assert answer.status_code == 202, answer.text
            await drained(len(answer.json()["events"]))
            table = await eligible_in_table(pool)

            async def live_caught_up(expected: set[tuple[str, str]] = table) -> bool:
                return await audience_now(settings.database_url) == expected

            await eventually(live_caught_up, within=90)
        assert 5 < len(table) < 40

    lines = (await projector.get("/v1/mailing-lists/newsletter")).text.splitlines()
    exported = {(r["subject_id"], r["email"]) for r in map(orjson.loads, lines)}
    assert exported == table

    fresh = settings.database_url.rsplit("/", 1)[0] + f"/{settings.feed_topic.replace('-', '_')}"
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{fresh.rsplit("/", 1)[1]}"')
    await admin.close()
    newcomer = audience_of(settings, fresh)
    async with running(lambda stop: run_audience(newcomer, stop)):

        async def rebuilt() -> bool:
            return await audience_now(fresh) == table

        await eventually(rebuilt, within=90)


async def test_mailing_list_pages_with_a_keyset_cursor_and_leaves_lapsed_consents_out(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: Any
) -> None:
    """Pages of any size add up to the whole list, in NDJSON and CSV; a consent whose
    valid_until passed is not listed although its expiry is not recorded yet."""
    lapsed = {"notice_version": "2022-02-22", "language": "fi", "method": "web_form",
              "legal_basis": "consent", "valid_until": "2024-06-01T00:00:00Z"}  # fmt: skip
    batch = [given_json(f"p-{n:02d}", purpose="analytics") for n in range(11)]
    batch.append(given_json("p-lapsed", purpose="analytics", data=lapsed))
    answer = await intake.post("/v1/events/batch", json={"events": batch})
    assert answer.status_code == 202, answer.text

    async def projected() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM subscribers") == 12)

    await eventually(projected)
    stored = await pool.fetchval(
        "SELECT purposes->'analytics'->'eligible' FROM subscribers WHERE subject_id = 'p-lapsed'"
    )
    assert stored is True, "eligible in the table: its expiry is not recorded"
    whole = (await projector.get("/v1/mailing-lists/analytics")).text.splitlines()
    ids = [orjson.loads(line)["subject_id"] for line in whole]
    assert ids == [f"p-{n:02d}" for n in range(11)]

    paged: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 4, "format": "csv"}
        if after is not None:
            params["after"] = after
        csv_lines = (await projector.get("/v1/mailing-lists/analytics", params=params)).text
        header, *rows = csv_lines.splitlines()
        assert header == "subject_id,email,eligibility_reason,valid_until"
        paged += [row.split(",")[0] for row in rows]
        if len(rows) < 4:
            break
        after = paged[-1]
    assert paged == ids

    unknown = await projector.get("/v1/mailing-lists/nope")
    assert unknown.status_code == 404
    assert "purpose" in unknown.json()["message"]


async def test_the_exports_refuse_a_nul_in_the_cursor_before_the_first_byte(
    projector: httpx.AsyncClient,
) -> None:
    """PostgreSQL cannot store U+0000: such a cursor was a 200 cut off mid-stream (a CSV
    client saw only the header, an empty list); it is a 422 naming the parameter."""
    for path in ("/v1/suppressions", "/v1/mailing-lists/newsletter"):
        answer = await projector.get(path, params={"after": "\x00", "format": "csv"})
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == ["query.after"]


async def test_the_exports_answer_accept_text_csv_with_csv_unless_format_says_otherwise(
    projector: httpx.AsyncClient,
) -> None:
    for path in ("/v1/suppressions", "/v1/mailing-lists/newsletter"):
        asked = await projector.get(path, headers={"Accept": "text/csv"})
        assert asked.headers["content-type"].startswith("text/csv")
        assert asked.text.startswith("subject_id,")
        told = await projector.get(
            path, params={"format": "ndjson"}, headers={"Accept": "text/csv"}
        )
        assert told.headers["content-type"] == "application/x-ndjson"
        assert told.text == ""


class Receiver:
    """A mail tool's webhook endpoint that fails its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[bool, bytes]] = []  # (signature valid, body)
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers["X-Consent-Ledger-Timestamp"]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        valid = (
            hmac.compare_digest(
                request.headers["X-Consent-Ledger-Signature"], f"sha256={expected.hexdigest()}"
            )
            and abs(time.time() - int(timestamp)) < 300
        )
        self.requests.append((valid, body))
        return Response(status_code=500 if len(self.requests) <= self.failures else 200)


@contextlib.asynccontextmanager
async def webhook_feed(
    settings: Settings, receiver: Receiver, *, max_attempts: int
) -> AsyncIterator[Settings]:
    """The feed with one webhook pointing at ``receiver`` (served on a local port)."""
    port = free_port()
    hooked = settings.model_copy(update={
        "feed_webhooks": [Webhook(url=f"http://127.0.0.1:{port}/hook", secret=SECRET)],
        "feed_webhook_backoff_s": 0.05,
        "feed_webhook_max_attempts": max_attempts,
    })  # fmt: skip
    async with serve(receiver.app, port), feed(hooked):
        yield hooked


async def test_webhook_delivery_survives_a_receiver_that_fails_its_first_tries(
    settings: Settings, projector: httpx.AsyncClient, pool: Any
) -> None:
    receiver = Receiver(failures=2)
    async with webhook_feed(settings, receiver, max_attempts=5):
        await append_events(settings, [given_event("w-1")])

        async def delivered() -> bool:
            return len(receiver.requests) >= 3 and not await pool.fetchval(
                "SELECT count(*) FROM feed_webhook_deliveries"
            )

        await eventually(delivered, within=90)
    assert len(receiver.requests) == 3
    assert all(valid for valid, _ in receiver.requests)
    change = FeedChange.model_validate_json(receiver.requests[-1][1])
    assert change.subject_id == "w-1"
    assert change.entry is not None
    assert change.entry.email == "w-1@example.com"
    assert change.entry.purposes["newsletter"].eligible
    assert await pool.fetchval("SELECT count(*) FROM feed_webhook_dead_letters") == 0


async def test_a_receiver_that_always_fails_ends_in_a_dead_letter(
    settings: Settings, projector: httpx.AsyncClient, pool: Any
) -> None:
    receiver = Receiver(failures=10**6)
    async with webhook_feed(settings, receiver, max_attempts=3):
        await append_events(settings, [given_event("w-dead")])

        async def dead() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM feed_webhook_dead_letters"))

        await eventually(dead, within=90)
        letter = await pool.fetchrow("SELECT * FROM feed_webhook_dead_letters")
        pending = await pool.fetchval("SELECT count(*) FROM feed_webhook_deliveries")
    assert (letter["subject_id"], letter["attempts"]) == ("w-dead", 3)
    assert letter["reason"].startswith("HTTP 500")
    assert letter["webhook"].endswith("/hook")
    assert len(receiver.requests) == 3
    assert pending == 0


async def test_a_store_without_side_effects_queues_no_feed_rows(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    """Replays write the projection only; the live store queues the change."""
    replay = SubscriberStore(pool, settings.ledger_topic, side_effects=False)
    live = SubscriberStore(pool, settings.ledger_topic)
    quiet, loud = given_event("r-replayed"), given_event("r-live")
    await replay.apply([LedgerRecord(0, 0, quiet, quiet.schema_version, encode(quiet))], {0: 1})
    assert await pool.fetchval("SELECT count(*) FROM subscribers") == 1
    assert await pool.fetchval("SELECT count(*) FROM feed_outbox") == 0
    await live.apply([LedgerRecord(0, 1, loud, loud.schema_version, encode(loud))], {0: 2})
    queued = await pool.fetch("SELECT subject_id FROM feed_outbox")
    assert [r["subject_id"] for r in queued] == ["r-live"]


def spawn(command: str, settings: Settings, cli: str = "services.cli") -> subprocess.Popen[bytes]:
    """``consent-ledger <command>`` (``cli="tools"``: ``python -m tools <command>``) as a child
    process, so that a test can SIGKILL it."""
    env = {**os.environ, **settings.to_env(), "CONSENT_LEDGER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", cli, command], env=env)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


async def test_sigkill_of_the_publisher_loses_nothing_and_the_cli_consumer_follows(
    settings: Settings, projector: httpx.AsyncClient, pool: Any
) -> None:
    """Killed at any instant, a restarted ``consent-ledger feed`` leaves on the topic exactly
    each subject's current entry; ``python -m tools audience`` builds the same audience."""
    events = consent_stream(subjects=2000, events_per_subject=3)
    await append_events(settings, events)
    await wait_projected(pool, len(events), within=180)
    assert await pool.fetchval("SELECT count(*) FROM feed_outbox") == 2000
    small = settings.model_copy(update={"feed_batch_max": 5})

    publisher = spawn("feed", small)
    try:

        async def under_way() -> bool:
            assert publisher.poll() is None, "the publisher died on its own"
            return bool(await pool.fetchval("SELECT count(*) FROM feed_outbox") < 1500)

        await eventually(under_way, within=120)
        publisher.send_signal(signal.SIGKILL)
        publisher.wait()
        left = await pool.fetchval("SELECT count(*) FROM feed_outbox")
        assert 0 < left < 1500, "the kill must land mid-stream"
    finally:
        if publisher.poll() is None:
            publisher.kill()

    publisher, audience = spawn("feed", small), spawn("audience", small, cli="tools")
    try:

        async def drained() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM feed_outbox")

        await eventually(drained, within=180)
        expected = {
            subject: feed_view(state) for subject, state in (await stored_states(pool)).items()
        }
        assert len(expected) == 2000
        # A batch that leaves the view as it was publishes nothing, so a record's version may
        # be older than the subject's: what it says is current.
        published = await latest_on_topic(settings)
        assert {s: view_of(e) for s, e in published.items()} == expected
        table = await eligible_in_table(pool)

        async def followed() -> bool:
            return await audience_now(settings.database_url) == table

        await eventually(followed, within=180)
    finally:
        codes = stop(publisher), stop(audience)
    assert codes == (0, 0), "SIGTERM stops both cleanly"


async def test_the_audience_keeps_each_persons_newest_version_in_any_order(pool: Any) -> None:
    """After partitions are added, a person's older record can be read after a newer one from
    another partition: the table keeps the highest version, a tombstone's included."""
    store = AudienceStore(pool, "consent.feed.v1")
    await store.ensure_schema()
    at = iter(range(100))

    def record(subject: str, partition: int, version: int | None, erased: bool = False) -> Any:
        entry = None if erased else feed_entry(subject, version or 0)
        return FeedRecord(partition, next(at), subject, entry, version)

    async def audience(*batch: FeedRecord) -> set[str]:
        await store.apply(list(batch))
        return {r["email"] for r in await pool.fetch("SELECT email FROM audience_members")}

    assert await audience(record("o-a", 1, 5)) == {"o-a.v5@example.fi"}
    assert await audience(record("o-a", 0, 3)) == {"o-a.v5@example.fi"}, "older: ignored"
    assert await audience(record("o-a", 1, 6, erased=True)) == set()
    assert await audience(record("o-a", 0, 4)) == set(), "older than the erasure"
    assert await audience(record("o-a", 1, 7)) == {"o-a.v7@example.fi"}, "a new sign-up"
    both = await audience(record("o-b", 0, 9), record("o-b", 1, 8))
    assert both == {"o-a.v7@example.fi", "o-b.v9@example.fi"}, "the newer in one batch too"
    legacy = await audience(record("o-b", 0, None, erased=True))
    assert legacy == {"o-a.v7@example.fi"}, "a tombstone without a version header still erases"


async def test_the_audience_reads_a_partition_added_while_it_runs(settings: Settings) -> None:
    """A partition added to the feed topic is read from its start; the partitions it read
    before go on from where they stood, skipping and repeating nothing."""
    topic, first = settings.feed_topic, settings.feed_partitions

    def entry(subject: str) -> bytes:
        return feed_entry(subject).model_dump_json().encode()

    producer = AIOKafkaProducer(**settings.kafka_options())
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    await producer.start()
    await admin.start()
    try:
        await producer.send_and_wait(topic, entry("p-old"), key=b"p-old", partition=0)
        async with running(lambda stop: run_audience(audience_of(settings), stop, recheck_s=0.2)):

            async def has(*subjects: str) -> bool:
                audience = await audience_now(settings.database_url)
                return {s for s, _ in audience} == set(subjects)

            await eventually(lambda: has("p-old"))
            await admin.create_partitions({topic: NewPartitions(total_count=first + 1)})

            async def producer_knows_it() -> bool:  # the broker learns of it a moment later
                await producer.client.force_metadata_update()
                return first in (producer.client.cluster.partitions_for_topic(topic) or set())

            await eventually(producer_knows_it)
            await producer.send_and_wait(topic, entry("p-new"), key=b"p-new", partition=first)
            await producer.send_and_wait(topic, entry("p-later"), key=b"p-later", partition=0)
            await eventually(lambda: has("p-old", "p-new", "p-later"))
    finally:
        await producer.stop()
        await admin.close()
    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetch(
            "SELECT partition, next_offset FROM audience_offsets WHERE topic = $1", topic
        )
    finally:
        await conn.close()
    assert {r["partition"]: r["next_offset"] for r in stored} == {
        **dict.fromkeys(range(first), 0),
        0: 2,
        first: 1,
    }


#: The forget bound of the test below: short, so the whole cycle is seen; the test stack's broker
#: looks for logs to clean every second (services/stack/kafka.py).
FORGET_AFTER_S = 16
#: Files a segment passes through while the cleaner replaces it; they may still hold old records.
REPLACED_SUFFIXES = (".deleted", ".cleaned", ".swap")


async def topic_configs(settings: Settings) -> dict[str, str]:
    """The feed topic's configs as the broker reports them."""
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, settings.feed_topic)
        [response] = await admin.describe_configs([resource])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    return {name: value for name, value, *_ in entries}


async def on_disk(settings: Settings, stack: StackSettings) -> tuple[str, list[str]]:
    """The feed topic's records as its segment files hold them, decoded by the broker's own
    DumpLogSegments (which decompresses batches), and the files of segments being replaced."""
    data = kafka_paths(settings.stack_dir).data
    files = sorted(data.glob(f"{settings.feed_topic}-*/*"))
    logs = [str(f) for f in files if f.suffix == ".log"]
    replaced = [f.name for f in files if f.name.endswith(REPLACED_SUFFIXES)]
    classpath = await broker_classpath(stack.cache_dir, stack.kafka_version, print)
    dump = await asyncio.create_subprocess_exec(
        require_java(), "-cp", classpath, "kafka.tools.DumpLogSegments",
        "--print-data-log", "--files", ",".join(logs),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await dump.communicate()
    assert dump.returncode == 0, output.decode(errors="replace")
    return output.decode(errors="replace"), replaced


async def test_an_erased_address_leaves_the_feed_topics_files_within_the_bound(
    settings: Settings,
    stack_settings: StackSettings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
) -> None:
    """A topic made with the default bound gets the short one; after an erasure, no segment
    file of the topic holds the address once the bound has passed, and the latest record of
    the person is still the tombstone (sent twice: the second rolls the segment)."""
    short = settings.model_copy(update={"feed_forget_after_s": FORGET_AFTER_S})
    await ensure_topics(short)
    configs = await topic_configs(short)
    assert (configs["segment.ms"], configs["max.compaction.lag.ms"]) == ("8000", "8000")
    address = "forget-me@example.com"
    async with feed(short):
        await post(intake, given_json("forget-me"))
        await wait_feed(short, lambda s: eligible_for(s.get("forget-me")))
        await post(intake, given_json("forget-me", purpose="analytics"))
        await wait_feed(short, lambda s: (e := s.get("forget-me")) and "analytics" in e.purposes)
        erased_at = time.monotonic()
        await post(intake, event("subject.erased", "forget-me", {"grounds": "request"}))
        await wait_feed(short, lambda s: "forget-me" in s and s["forget-me"] is None)
        records, _ = await on_disk(short, stack_settings)
        assert records.count(address) == 2, "before the bound, both entries hold the address"

        async def forgotten() -> bool:
            records, replaced = await on_disk(short, stack_settings)
            return address not in records and not replaced

        await eventually(forgotten, within=FORGET_AFTER_S + 60)
        took = time.monotonic() - erased_at
        assert took < FORGET_AFTER_S, f"forgotten after {took:.1f} s"
    published = [r for r in await read_topic(short, short.feed_topic) if r.key == b"forget-me"]
    assert [r.value for r in published] == [b"", b""], "only the two tombstones are left"


async def test_a_newer_entry_cancels_the_tombstone_re_send(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    """A re-sent tombstone must not follow a newer entry of the person (the compacted topic
    would keep the tombstone and drop the entry); one still due is sent with its version."""
    publisher = FeedPublisher(
        pool, settings.kafka_options(), settings.feed_topic, [],
        batch_max=10, timeout_s=5.0, resend_after_ms=3_600_000,
    )  # fmt: skip
    queue = (
        "INSERT INTO feed_outbox (subject_id, version, last_event_id, updated_at, entry)"
        " VALUES ($1, $2, gen_random_uuid(), now(), $3)"
    )

    async def planned() -> set[tuple[str, int]]:
        rows = await pool.fetch("SELECT subject_id, version FROM feed_tombstone_resends")
        return {(r["subject_id"], r["version"]) for r in rows}

    try:
        await pool.execute(queue, "c-back", 3, None)
        await pool.execute(queue, "c-gone", 5, None)
        assert await publisher.publish_once() == 2
        assert await planned() == {("c-back", 3), ("c-gone", 5)}, "due in an hour"
        await pool.execute(queue, "c-back", 4, feed_entry("c-back", 4).model_dump(mode="json"))
        assert await publisher.publish_once() == 1
        assert await planned() == {("c-gone", 5)}
        await pool.execute("UPDATE feed_tombstone_resends SET due_at = now() - interval '1 s'")
        assert await publisher.publish_once() == 1
        assert await planned() == set()
    finally:
        await publisher.stop()
    published = await read_topic(settings, settings.feed_topic)  # in order per key

    def sent(key: bytes) -> list[tuple[bool, bytes]]:
        return [(bool(r.value), r.headers["version"]) for r in published if r.key == key]

    assert sent(b"c-back") == [(False, b"3"), (True, b"4")]
    assert sent(b"c-gone") == [(False, b"5"), (False, b"5")]


async def test_a_tombstones_fan_out_forgets_the_persons_webhook_dead_letters(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    """A delivery that failed its last try after the erasure was projected, but before its
    tombstone was fanned out, left a dead letter holding the address: the fan-out removes it."""
    publisher = FeedPublisher(
        pool, settings.kafka_options(), settings.feed_topic, ["http://127.0.0.1:9/hook"],
        batch_max=10, timeout_s=5.0, resend_after_ms=3_600_000,
    )  # fmt: skip
    dead = (
        "INSERT INTO feed_webhook_dead_letters (webhook, subject_id, version, body, attempts,"
        " reason) VALUES ('http://127.0.0.1:9/hook', $1, 1, $2, 8, 'refused')"
    )
    for subject in ("d-gone", "d-kept"):
        await pool.execute(dead, subject, feed_entry(subject).model_dump(mode="json"))
    await pool.execute(
        "INSERT INTO feed_outbox (subject_id, version, last_event_id, updated_at, entry)"
        " VALUES ('d-gone', 2, gen_random_uuid(), now(), NULL)"
    )
    try:
        assert await publisher.publish_once() == 1
    finally:
        await publisher.stop()
    left = await pool.fetch("SELECT subject_id FROM feed_webhook_dead_letters")
    assert [r["subject_id"] for r in left] == ["d-kept"]
