"""What the serializers' safety checks cost over the raw libraries they wrap.

JSON and MSGPACK refuse what they could not send back (lone surrogates, NaN,
nesting deeper than MAX_DEPTH, msgpack extensions) and keep big integers
exact. The checks run at C speed (a translate or a count over the payload)
and walk a value only when the payload could hold something to refuse. This
compares each call with raw ``orjson`` / ``msgpack`` on the same payloads, in
the same run, and prints ratios (best of several repeats).

    python benchmarks/bench_serializers.py
"""

from __future__ import annotations

import timeit
from functools import partial

import msgpack
import orjson

from agentzero.serializers import JSON, MSGPACK

PAYLOADS = {
    "small": {"job": 123456, "name": "video-download", "args": [1, 2, 3], "ok": True},
    "records": [{"id": index, "name": f"item-{index}", "score": index * 1.5} for index in range(1000)],
    "blob": {"frame": bytes(range(256)) * 256, "index": 7},
}


def best(call, number: int) -> float:
    """The best time of one call, in microseconds."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    json_serializer, msgpack_serializer = JSON(), MSGPACK()
    ratios = []
    print(f"{'payload':10s} {'call':16s} {'raw us':>9s} {'agentzero us':>13s} {'ratio':>7s}")
    for name, value in PAYLOADS.items():
        number = 20000 if name == "small" else 100
        packed_msgpack = msgpack.packb(value, use_bin_type=True)
        rows = [
            (
                "msgpack unpack",
                partial(msgpack.unpackb, packed_msgpack),
                partial(msgpack_serializer.unpack, packed_msgpack),
            ),
            (
                "msgpack pack",
                partial(msgpack.packb, value, use_bin_type=True),
                partial(msgpack_serializer.pack, value),
            ),
        ]
        if name != "blob":  # JSON has no bytes
            packed_json = orjson.dumps(value)
            rows = [
                (
                    "json unpack",
                    partial(orjson.loads, packed_json),
                    partial(json_serializer.unpack, packed_json),
                ),
                ("json pack", partial(orjson.dumps, value), partial(json_serializer.pack_bytes, value)),
            ] + rows
        for call, raw, ours in rows:
            raw_us, our_us = best(raw, number), best(ours, number)
            ratios.append(our_us / raw_us)
            print(f"{name:10s} {call:16s} {raw_us:9.2f} {our_us:13.2f} {our_us / raw_us:7.2f}")
    geometric = 1.0
    for ratio in ratios:
        geometric *= ratio
    geometric **= 1 / len(ratios)
    print(f"geometric mean of the ratios: {geometric:.2f}")
    print(f"RESULT serializers_over_raw {geometric:.2f} x")


if __name__ == "__main__":
    main()
