"""How long the busiest screens take to render and to check against LINE's limits: the template
walker and string.Formatter (as before) against the compiled templates and parsed strings
entries, and the limit check as before (tests/limits_reference.py) against the one walk.

    .venv/bin/python benchmarks/flex_render.py [iterations]

Per screen, in microseconds per message (best of 5 runs of `iterations`, 300 by default):
build is the whole message function (fields, strings and the template), fill the template
alone, check check_messages on the result. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from bot.config import DEFAULT_PROGRAM  # noqa: E402
from bot.line import flex  # noqa: E402
from bot.line import messages as m  # noqa: E402
from bot.line.limits import check_messages  # noqa: E402
from bot.program import load_program  # noqa: E402
from bot.simulator import samples  # noqa: E402
from tests import limits_reference  # noqa: E402

REPEATS = 5


def screens() -> dict[str, Callable[[], list[dict]]]:
    program = load_program(DEFAULT_PROGRAM)
    ctx = samples.context(program, "zh-TW")
    who = samples.member()
    coupons = [samples.view(program, "welcome", 1), samples.view(program, "free_drink", 2)]
    summary = samples.summary(program, who, wallet=coupons)
    bought = samples.purchase(program)
    return {"points": lambda: m.points_card(ctx, summary),
            "stamps": lambda: m.stamp_card(ctx, summary),
            "wallet": lambda: m.wallet(ctx, coupons),
            "card": lambda: m.member_card(ctx, who, summary),
            "rewards": lambda: m.rewards_catalog(ctx, summary.balance),
            "staff purchase": lambda: m.staff_purchase_recorded(ctx, who, bought),
            "receipt": lambda: m.purchase_receipt(ctx, bought, 1350, coupons)}


@contextmanager
def walked() -> Iterator[None]:
    """Messages rendered as before: the walker, and string.Formatter for every entry."""
    renderer, formatter = m._renderer, flex._formatter
    m._renderer = lambda name: partial(flex.fill, m._tagged(name))
    flex._formatter = lambda text: partial(flex._PLURALS.vformat, text, ())
    try:
        yield
    finally:
        m._renderer, flex._formatter = renderer, formatter


def last_fill(build: Callable[[], list[dict]]) -> tuple[str, dict, Any]:
    """The template, fields and strings `build` fills."""
    seen, renderer = [], m._renderer

    def spy(name: str) -> Callable:
        seen.append(name)
        real = renderer(name)
        return lambda fields, strings: seen.append((fields, strings)) or real(fields, strings)
    m._renderer = spy
    try:
        build()
    finally:
        m._renderer = renderer
    return seen[0], *seen[1]


def micros(work: Callable[[], Any], iterations: int) -> float:
    return min(timeit.repeat(work, number=iterations, repeat=REPEATS)) / iterations * 1e6


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print(f"µs per message, best of {REPEATS} x {iterations}; old = walker, string.Formatter "
          "and the check before")
    print(f"{'screen':<15}{'build old':>10}{'new':>7}{'fill old':>10}{'new':>7}"
          f"{'check old':>11}{'new':>7}{'JSON bytes':>12}")
    totals = [0.0] * 6
    for label, build in screens().items():
        name, fields, strings = last_fill(build)
        tagged, compiled = m._tagged(name), m._renderer(name)
        messages = build()
        walk = partial(flex.fill, tagged, fields, strings)
        with walked():
            assert build() == messages  # the same message either way
            old_build, old_fill = micros(build, iterations), micros(walk, iterations)
        figures = [old_build, micros(build, iterations), old_fill,
                   micros(partial(compiled, fields, strings), iterations),
                   micros(partial(limits_reference.check_messages, messages), iterations),
                   micros(partial(check_messages, messages), iterations)]
        totals = [total + figure for total, figure in zip(totals, figures, strict=True)]
        size = len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode())
        print(f"{label:<15}{figures[0]:>10.0f}{figures[1]:>7.0f}{figures[2]:>10.0f}"
              f"{figures[3]:>7.0f}{figures[4]:>11.0f}{figures[5]:>7.0f}{size:>12,}")
    print(f"{'all seven':<15}{totals[0]:>10.0f}{totals[1]:>7.0f}{totals[2]:>10.0f}"
          f"{totals[3]:>7.0f}{totals[4]:>11.0f}{totals[5]:>7.0f}")


if __name__ == "__main__":
    main()
