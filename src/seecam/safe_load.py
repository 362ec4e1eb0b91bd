"""Loading torch files without trusting them: model files and training checkpoints.

`torch.load(weights_only=True)` rebuilds only tensors and plain values, and refuses anything else, since
unpickling another object can run any code. Its refusal message advises loading again with
`weights_only=False`, which would run that code; for plain (non-zip) pickles it also warns on stderr first.
So callers never see torch's words: a refusal is `Refused`, and they say what it means in their own.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch


class Refused(Exception):
    """The file holds objects beyond tensors and plain values; the message is the object torch named, if any."""


def load_tensors(path: Path) -> Any:
    """The file's contents, loaded safely on the CPU; raise Refused for objects a safe load refuses.

    Other failures (a cut zip, an empty file) propagate: they mean "damaged", not "unsafe".
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Weights only Unpickler might not support all instructions..."
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            text = str(exc)
            # torch words and types its refusals differently across file kinds and versions: either mark counts
            if not (isinstance(exc, pickle.UnpicklingError) or "weights_only" in text.lower().replace(" ", "_")):
                raise
            found = re.search(r"GLOBAL ([\w.]{1,100})", text)
            raise Refused(found[1] if found else "") from None
