"""What a consumer's part markers cost in the part's MULTI/EXEC, against what they replaced,
in the same run on the benchmark's Redis database.

- before: the part's commands, then ``SET <marker> 1``;
- now: ``SET <marker> running``, the part's commands with every script given the marker
  (``shared.lua.with_marker``), then the script setting ``1`` if it still says ``running``.

Each part is one store script (a SADD, as a replica's side); ``--parts`` parts per EXEC, as a
batch or a fan-out commits. Figures: microseconds per part, client and Redis together.

    python -m bench.part_markers [--parts 50] [--rounds 400]
"""
from __future__ import annotations

import argparse
import time
import uuid

from bench.support import BENCH_STORE_DB, write_results
from shared import store_client
from shared.bus.consumer import _MARK_DONE, RUNNING, with_part_marker
from shared.lua import LuaScript
from shared.settings import load_settings

SIDE = LuaScript("bench_side", keys=("set",), args=("member",), source="""
return redis.call('SADD', K.set, A.member)
""")


def shapes(run: str, parts: int, round_: int) -> dict[str, list]:
    old, new = [], []
    for p in range(parts):
        key, marker = f"bench:{{{run}-{p}}}:set", f"bench:{{{run}-{p}}}:marker:{round_}"
        keys, args = SIDE.pack({"set": key}, {"member": f"m{round_}"})
        script = (("EVAL", SIDE.source, len(keys), *keys, *args), {})
        old += [script, (("SET", marker, 1, "EX", 60), {})]
        new += [(("SET", marker, RUNNING, "EX", 60), {}), with_part_marker(script, marker, {}),
                (("EVAL", _MARK_DONE.source, 1, marker), {})]
    return {"before": old, "now": new}


def exec_us(store, commands: list) -> float:
    pipe = store.pipeline(transaction=True)
    for args, options in commands:
        pipe.execute_command(*args, **options)
    started = time.perf_counter()
    pipe.execute()
    return (time.perf_counter() - started) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=400)
    opts = parser.parse_args()
    settings = load_settings()
    store = store_client.connect(f"redis://127.0.0.1:{settings.store_port}/{BENCH_STORE_DB['feed']}")
    run = uuid.uuid4().hex[:8]
    spent = {"before": 0.0, "now": 0.0}
    try:
        for r in range(opts.rounds):
            both = shapes(run, opts.parts, r)
            order = ("before", "now") if r % 2 else ("now", "before")  # alternate, so neither goes first
            for name in order:
                spent[name] += exec_us(store, both[name])
    finally:
        for key in store.scan_iter(match=f"bench:{{{run}-*"):
            store.delete(key)
    per_part = {name: round(us / (opts.rounds * opts.parts), 2) for name, us in spent.items()}
    write_results("part_markers", {
        "parts_per_exec": opts.parts, "rounds": opts.rounds,
        "us_per_part_before": per_part["before"], "us_per_part_now": per_part["now"],
        "now_over_before": round(per_part["now"] / per_part["before"], 2),
    })


if __name__ == "__main__":
    main()
