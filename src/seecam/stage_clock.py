"""Where a stage's wall-clock time went, as one line at the end of its log.

    cnn: startup 17.1 s, compile 0.0 s, epochs 300.5 s, outputs 1.4 s   (3 real epochs, busy 2-core CPU)
    explain: gallery 0.4 s, ..., faithfulness 6.0 s (1,000 images), excitation 2.1 s (10,000 images), ...

Each part is the time since the previous lap, so no part is hidden between two others: the train stage starts
the clock before its heavy imports, so startup counts them; explain times each block of work as a `part`, and
the few statements between two blocks count to the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageClock:
    """Seconds per named part of one stage run, in the order the parts ended."""

    started: float | None = None  # now() at the stage's start (before its imports); None: when the clock is made
    now: Callable[[], float] = time.perf_counter  # seconds; tests pass a fake clock
    parts: dict[str, float] = field(default_factory=dict, init=False)
    notes: dict[str, str] = field(default_factory=dict, init=False)  # part -> how much work it was, for the line

    def __post_init__(self) -> None:
        self._last = self.now() if self.started is None else self.started

    def lap(self, part: str, carve: tuple[str, float] | None = None, note: str = "") -> None:
        """Charge the time since the previous lap to `part`, less `carve`'s seconds, which go to its own part."""
        now = self.now()
        elapsed, self._last = now - self._last, now
        if carve:
            name, seconds = carve
            self.parts[name] = self.parts.get(name, 0.0) + seconds
            elapsed -= seconds
        self.parts[part] = self.parts.get(part, 0.0) + elapsed
        if note:
            self.notes[part] = note

    @contextmanager
    def part(self, name: str, note: str = "") -> Iterator[None]:
        """Lap `name` when the block ends: a block of work as one part of the line, `note` its size."""
        yield
        self.lap(name, note=note)

    def line(self, label: str) -> str:
        return f"{label}: " + ", ".join(self._shown(part) for part in self.parts)

    def _shown(self, part: str) -> str:
        note = self.notes.get(part)
        return f"{part} {self.parts[part]:.1f} s" + (f" ({note})" if note else "")
