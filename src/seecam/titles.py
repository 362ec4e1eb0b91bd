"""How prose, figure titles and tables name a model: one spelling (CNN, SE) on every page, figure and log line.

Its own module so that the stages which write model names (evaluate, explain, report, verdict) share it without
depending on each other's code, and training, which names no model in prose, does not depend on it.
"""


def title(name: str) -> str:
    """A model's name as prose shows it: params.yaml's `se` is "SE"."""
    return name.upper()
