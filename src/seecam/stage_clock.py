"""Where a stage's wall-clock time went, as one line at the end of its log.

    cnn: startup 17.1 s, compile 0.0 s, epochs 300.5 s, outputs 1.4 s   (3 real epochs, busy 2-core CPU)

Each part is the time since the previous lap; the stage script starts the clock before its heavy imports, so
startup counts them, and no part is hidden between two others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class StageClock:
    """Seconds per named part of one stage run, in the order the parts ended."""

    started: float = field(default_factory=time.perf_counter)  # time.perf_counter() at the stage's start
    parts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last = self.started

    def lap(self, part: str, carve: tuple[str, float] | None = None) -> None:
        """Charge the time since the previous lap to `part`, less `carve`'s seconds, which go to its own part."""
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        if carve:
            name, seconds = carve
            self.parts[name] = self.parts.get(name, 0.0) + seconds
            elapsed -= seconds
        self.parts[part] = self.parts.get(part, 0.0) + elapsed

    def line(self, label: str) -> str:
        return f"{label}: " + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in self.parts.items())
