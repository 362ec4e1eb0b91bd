"""The metrics files the pipeline just wrote read into their types and write back to the same bytes."""

import pytest

from seecam.atomic import write_json
from seecam.stage_metrics import EvaluateMetrics, ExplainMetrics


@pytest.mark.parametrize("metrics", [EvaluateMetrics, ExplainMetrics])
def test_each_metrics_file_round_trips_byte_for_byte(pipeline_repo, metrics, tmp_path):
    """A key the type does not model would be lost or refused here: DVC and the report read the same file."""
    real = pipeline_repo.root / metrics.FILE
    write_json(tmp_path / "metrics.json", metrics.load(real).to_json())
    assert (tmp_path / "metrics.json").read_bytes() == real.read_bytes()
