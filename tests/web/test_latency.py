"""Request-path latency of signed webhook POSTs (printed, never asserted: timing is not a test)."""
from __future__ import annotations

import statistics
import time

from .conftest import SECRET
from .signing import body_of, event, signed_headers

N = 1000
PATH = "/webhooks/fakehub"


def test_thousand_signed_posts_latency(web) -> None:
    h = web()
    # Signing happens before the clock starts: only the server's part is measured.
    requests_to_send = []
    for i in range(N):
        raw = body_of([event(i, 10_000 + i), event(i, 20_000 + i, "contact.creation")])
        requests_to_send.append((raw, signed_headers(SECRET, h.url + PATH, raw)))
    timings = []
    for raw, headers in requests_to_send:
        started = time.perf_counter()
        r = h.post(PATH, raw, headers)
        timings.append(time.perf_counter() - started)
        assert r.status_code == 200
    assert h.store.inbox_pending() == 2 * N
    q = statistics.quantiles(timings, n=100)
    print(f"\nwebhook POST round trip over {N} requests (2 events each, {type(h.store.inner).__name__}): "
          f"p50={q[49] * 1000:.2f} ms p95={q[94] * 1000:.2f} ms p99={q[98] * 1000:.2f} ms "
          f"max={max(timings) * 1000:.2f} ms")
