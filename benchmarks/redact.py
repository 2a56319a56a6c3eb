"""How long the one redaction pass takes on long odd lines, by size: run on demand,
`.venv/bin/python benchmarks/redact.py`. Each line doubles the input; a time that grows by about 2x
a step is linear, 4x quadratic (the patterns were quadratic on runs of `-a`, `.d` or `"value":`
until the break-it review of session 12)."""

from __future__ import annotations

import time

from dvdoctor.core import redact

SHAPES = {
    "a -a run": lambda n: "x" + "-a" * n,
    "a .d run": lambda n: "a:b@c" + ".d" * n,
    "value: pairs": lambda n: '"value": "x", ' * (n // 7),
    "a: run": lambda n: "a:" * n,
    "env names": lambda n: "name: DB_PASS\n" * (n // 7),
    "a YAML block": lambda n: "password: |\n" + "  x\n" * (n // 2),
}


def main() -> None:
    sizes = [5_000, 10_000, 20_000, 40_000]
    print(f"{'shape':<14}" + "".join(f"{n * 2:>12,}" for n in sizes) + "   ratio per doubling")
    for name, make in SHAPES.items():
        times = []
        for n in sizes:
            line = make(n)
            started = time.perf_counter()
            redact.text(line)
            times.append(time.perf_counter() - started)
        ratios = [b / a for a, b in zip(times, times[1:]) if a > 0]
        print(f"{name:<14}" + "".join(f"{t * 1000:>10.1f}ms" for t in times)
              + "   " + " ".join(f"{r:.1f}x" for r in ratios))


if __name__ == "__main__":
    main()
