"""The savings in the cost of a write that are code, not settings, each measured against what
it replaced in the same run (``bench.write_cost --compare`` measures the settings):

1. a consumer's CPU per record it skips (its type has no handler here), with kafka-python's
   CRC-32C in C (the ``crc32c`` package) and in pure Python (the package hidden);
2. the relay's CPU per event when a produce request carries 3 events and 30 (what the
   relay's linger buys under load);
3. the write limits: the ``limits`` library's moving window (one script call per limit) and
   ours (``shared.http.ratelimit``: one call for all of them);
4. decoding an event: the envelope checked by ``EnvelopeSchema`` or by ``load_envelope``;
   JSON by the standard library or by orjson; the data by its marshmallow schema or by its
   fast path (``shared.events.fastload``); a whole decode, and building an event (``new_event``);
5. a consumer's CPU per event it handles, one transaction per event and one per batch of 100,
   the same events read by two consumer groups: ``follows.followers`` (``follow.created`` of
   edges in the store: the edge read, its projection queued) and ``connections.suggestions``
   (``invitation.sent`` of real invitations: the pair's record read, both members' sides queued);
   for a consumer with ``reads_ahead``, also a batch of 100 whose handlers each read their own.

CPU is the process's own (user + system), so a consumer's or producer's I/O thread counts too.

    python -m bench.write_parts [--records 20000] [--handled 3000] [--only consumer_handle ...]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
import timeit
import uuid

from shared.settings import REPO_ROOT
from shared import store_client


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def skip_cost(count: int) -> dict:
    """(run in a child process) CPU per record of follows.connections for invitation.sent records."""
    from bench.support import bench_settings
    from services.follows.worker import consumers
    from shared.bus.outbox import Outbox, structured_headers
    from shared.bus.producer import make_producer
    from shared.events import encode, new_event

    settings = bench_settings(log_level="WARNING")
    producer = make_producer(settings)
    for i in range(count):
        event = new_event("connections", "invitation.sent", {
            "invitation_id": f"{i:032x}", "inviter": f"a{i}", "invitee": f"b{i}", "message": None,
            "sent_at": "2026-11-26T10:00:00.000Z", "introduced_by": None})
        value = encode(event)
        producer.send(settings.topic("connections.events"), key=event.key.encode(), value=value,
                      headers=structured_headers(value.decode()))
    producer.flush()
    producer.close()
    [spec] = [c for c in consumers(settings) if c.name == "follows.connections"]
    store = store_client.connect(settings.store_url("follows"))
    used = _consume(spec, settings, store, Outbox("follows", settings), count)
    return {"records": count, "cpu_ms_per_record": round(used * 1000 / count, 4)}


def _consume(spec, settings, store, outbox, count: int) -> float:
    """CPU seconds ``spec`` (its own group) takes to handle ``count`` records, in this process."""
    from shared.bus.consumer import HANDLED, ConsumerRunner

    def seen() -> float:
        return sum(s.value for m in HANDLED.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels["consumer"] == spec.name)

    runner = ConsumerRunner(spec, settings, store, outbox)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    started, start_cpu = time.monotonic(), cpu()
    thread.start()
    while seen() < count:
        time.sleep(0.02)
        if time.monotonic() - started > 300:
            raise RuntimeError(f"{spec.name} did not get through the records")
    used = cpu() - start_cpu
    stop.set()
    thread.join(20)
    return used


def handled_cost(service: str, count: int) -> dict:
    """(run in a child process) CPU per event handled, per event and per batch of 100."""
    import dataclasses

    from bench.support import bench_settings
    from shared.bus.outbox import Outbox, OutboxRelay, relay_until_empty, structured_headers
    from shared.bus.producer import make_producer
    from shared.events import encode, new_event

    settings = bench_settings(log_level="WARNING")
    store = store_client.connect(settings.store_url(service))
    outbox = Outbox(service, settings)
    run = uuid.uuid4().hex[:8]
    if service == "follows":
        from services.follows import store as follows_keys
        from services.follows.worker import consumers
        name = "follows.followers"
        with store.pipeline(transaction=False) as pipe:  # the edges, as the follow requests left them
            for i in range(count):
                follower, followee = f"a{run}{i}", f"b{run}{i % 50}"
                pipe.zadd(follows_keys.following(follower), {followee: 1_796_000_000_000})
                pipe.set(follows_keys.follow_version(follower, followee), 1)
            pipe.execute()
        producer = make_producer(settings)
        for i in range(count):
            event = new_event("follows", "follow.created", {
                "follower": f"a{run}{i}", "followee": f"b{run}{i % 50}", "reason": "explicit",
                "notify_on_post": False, "since": "2026-11-26T10:00:00.000Z", "version": 1})
            value = encode(event)
            producer.send(settings.topic("follows.events"), key=event.key.encode(), value=value,
                          headers=structured_headers(value.decode()))
        producer.flush()
        producer.close()
    else:
        from services.connections import invitations
        from services.connections.worker import consumers
        name = "connections.suggestions"
        for i in range(count):
            invitations.send(store, outbox, settings, f"a{run}{i}", f"b{run}{i}")
        relay_until_empty(OutboxRelay(outbox, store, lambda: make_producer(settings)), timeout=120)
    [spec] = [c for c in consumers(settings) if c.name == name]
    out = {"consumer": name, "events": count}
    variants = [("per_event_ms", 1, spec.reads_ahead), ("batch_of_100_ms", 100, spec.reads_ahead)]
    if spec.reads_ahead is not None:  # and each handler reading its own state, as before the reads ahead
        variants.append(("batch_of_100_reading_each_ms", 100, None))
    for label, batch_size, reads_ahead in variants:
        group = dataclasses.replace(spec, name=f"{name}-{label}-{run}", batch_size=batch_size,
                                    reads_ahead=reads_ahead)
        out[label] = round(_consume(group, settings, store, outbox, count) * 1000 / count, 4)
    return out


def relay_cost(events: int, per_batch: int) -> dict:
    from bench.support import bench_settings
    from shared.bus.outbox import Outbox, OutboxRelay
    from shared.bus.producer import make_producer
    from shared.events import new_event

    settings = bench_settings(log_level="WARNING")
    store = store_client.connect(settings.store_url("follows"))
    outbox = Outbox("follows", settings)
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings))
    relay._holds_lease()
    relay.publish_batch(block_ms=10)  # the producer connects
    used = 0.0
    for start in range(0, events, per_batch):
        with store.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + per_batch, events)):
                outbox.add(pipe, new_event("follows", "follow.created", {
                    "follower": f"f{i}", "followee": f"e{i}", "reason": "explicit",
                    "since": "2026-11-26T10:00:00.000Z", "version": 1}))
            pipe.execute()
        before = cpu()
        relay.publish_batch(block_ms=10)
        used += cpu() - before
    relay._reset_producer()
    return {"events": events, "events_per_request": per_batch, "cpu_ms_per_event": round(used * 1000 / events, 4)}


def limits_cost(count: int) -> dict:
    from limits import parse_many
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    from bench.support import bench_settings
    from shared.http.ratelimit import WriteLimits

    settings = bench_settings(log_level="WARNING")
    url, rates, run = settings.store_url("follows"), "30/second;900/minute", uuid.uuid4().hex[:6]
    ours = WriteLimits(url, rates, settings.namespace)
    library = MovingWindowRateLimiter(RedisStorage(url, key_prefix=f"rate-limit:{settings.namespace}-lib"))
    items = parse_many(rates)

    def theirs(member: str) -> None:
        for item in items:
            library.hit(item, "writes", "{%s}" % member)

    out = {}
    for name, hit in (("limits_library_ms", theirs), ("one_script_ms", ours.hit)):
        before = cpu()
        for i in range(count):
            hit(f"m{i}-{run}")
        out[name] = round((cpu() - before) * 1000 / count, 4)
    return {"limits": rates, "writes": count, **out}


def decode_cost(count: int) -> dict:
    import orjson

    from shared.events import decode, encode, new_event
    from shared.events.envelope import _ENVELOPE, _data_loader, load_envelope
    from shared.events.catalogue import lookup

    event = new_event("follows", "follow.created", {"follower": "ada", "followee": "grace", "reason": "explicit",
                                                     "since": "2026-11-26T10:15:00.123Z", "version": 1})
    raw, envelope = encode(event), event.envelope()
    loader, data = _data_loader(lookup("follows", "follow.created")), dict(event.data)

    def us(fn) -> float:
        return round(timeit.timeit(fn, number=count) / count * 1e6, 2)

    return {"events": count,
            "envelope_schema_us": us(lambda: _ENVELOPE.load(envelope)),
            "load_envelope_us": us(lambda: load_envelope(envelope)),
            "json_loads_us": us(lambda: json.loads(raw)), "orjson_loads_us": us(lambda: orjson.loads(raw)),
            "json_dumps_us": us(lambda: json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()),
            "orjson_dumps_us": us(lambda: orjson.dumps(envelope)),
            "data_schema_load_us": us(lambda: loader.schema.load(data)),
            "data_fast_load_us": us(lambda: loader.load(data)),
            "decode_us": us(lambda: decode(raw)),
            "new_event_us": us(lambda: new_event("follows", "follow.created", data))}


def _in_child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


PARTS = ("consumer_skip", "relay", "write_limits", "event_decode", "consumer_handle")


def main() -> None:
    from bench.support import write_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--handled", type=int, default=3000)
    parser.add_argument("--only", nargs="+", choices=PARTS, help="these parts only (the others keep their last figures)")
    args = parser.parse_args()
    call = f"import json; from bench.write_parts import skip_cost; print(json.dumps(skip_cost({args.records})))"
    parts = {
        "consumer_skip": lambda: {
            "crc32c_in_c": _in_child(call),
            # kafka-python falls back to its own CRC-32C when the package cannot be imported.
            "crc32c_in_python": _in_child("import sys; sys.modules['crc32c'] = None; " + call),
        },
        "relay": lambda: [relay_cost(1500, 3), relay_cost(3000, 30)],
        "write_limits": lambda: limits_cost(3000),
        "event_decode": lambda: decode_cost(20000),
        "consumer_handle": lambda: [
            _in_child(f"import json; from bench.write_parts import handled_cost; "
                      f"print(json.dumps(handled_cost({service!r}, {args.handled})))")
            for service in ("follows", "connections")],
    }
    figures = {}
    if args.only:
        last = REPO_ROOT / "bench" / "results" / "write_parts.json"
        figures = json.loads(last.read_text()).get("figures", {}) if last.exists() else {}
    for name in args.only or PARTS:
        figures[name] = parts[name]()
        print(name, json.dumps(figures[name]), flush=True)
    write_results("write_parts", figures)


if __name__ == "__main__":
    main()
