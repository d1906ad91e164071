"""Time-ordered UUIDs (version 7, RFC 9562): index-friendly primary keys.

Within a process they are strictly increasing, also within one millisecond (RFC 9562's
monotonic random, method 2): rows written in one transaction sort in the order they were
made, which the outbox relies on to deliver events in the order they were published.
"""

import os
import threading
import time
import uuid

_PAYLOAD_BITS = 74  # rand_a (12) and rand_b (62)
_last = (0, 0)  # (unix ms, payload) of the previous id
_lock = threading.Lock()


def _compose(unix_ms: int, payload: int) -> uuid.UUID:
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (payload >> 62) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= payload & ((1 << 62) - 1)  # rand_b
    return uuid.UUID(int=value)


def uuid7() -> uuid.UUID:
    global _last
    with _lock:
        unix_ms = time.time_ns() // 1_000_000
        payload = int.from_bytes(os.urandom(10), "big") >> (80 - _PAYLOAD_BITS)
        last_ms, last_payload = _last
        if unix_ms <= last_ms:  # same millisecond, or the clock went back: count on
            # A random step keeps the ids hard to guess from one another.
            unix_ms, payload = last_ms, last_payload + 1 + (payload >> 42)
            if payload >> _PAYLOAD_BITS:
                unix_ms, payload = last_ms + 1, payload & ((1 << (_PAYLOAD_BITS - 1)) - 1)
        _last = (unix_ms, payload)
        return _compose(unix_ms, payload)
