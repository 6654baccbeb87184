"""How long the tests' fake LINE API takes to start, answer and stop (an idle kept-alive
client connection open while it stops, as in tests/test_fake_line.py).

    .venv/bin/python benchmarks/fake_line.py

Prints figures; asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from linebot.v3.messaging import ApiClient, MessagingApi  # noqa: E402

from tests.fake_line import FakeLine  # noqa: E402

RUNS = 20


def main() -> None:
    starts, calls, stops = [], [], []
    for _ in range(RUNS):
        began = time.perf_counter()
        fake = FakeLine().start()
        starts.append(time.perf_counter() - began)
        with ApiClient(fake.configuration()) as client:
            began = time.perf_counter()
            MessagingApi(client).get_bot_info()
            calls.append(time.perf_counter() - began)
            began = time.perf_counter()
            fake.stop()
            stops.append(time.perf_counter() - began)
    for label, samples in (("start", starts), ("first call", calls), ("stop", stops)):
        print(f"{label:<11} median {statistics.median(samples) * 1000:7.1f} ms"
              f"   max {max(samples) * 1000:7.1f} ms   ({RUNS} runs)")


if __name__ == "__main__":
    main()
