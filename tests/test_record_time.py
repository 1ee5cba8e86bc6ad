"""tools/record_time.py: the one place a recorded run (make test, a fresh-clone course run) is added."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import record_time  # noqa: E402


def test_runs_are_appended_and_only_the_last_few_kept(tmp_path):
    path = tmp_path / "times.json"
    path.write_text(json.dumps({"course": {"00": 1.0}}))
    for s in range(record_time.MAX_RUNS + 2):
        record_time.record("make_test", 100 + s, path)
    data = json.loads(path.read_text())
    assert [r["seconds"] for r in data["runs"]["make_test"]] == [100.0 + s for s in range(2, record_time.MAX_RUNS + 2)]
    assert data["course"] == {"00": 1.0} and "CPU cores" in data["machine"]  # the rest of the file is kept


def test_a_per_notebook_run_is_stored_as_given():
    times: dict = {}
    record_time.append_run(times, "course_fresh_clone", {"00_setup": 12.3})
    assert times["runs"]["course_fresh_clone"][0]["seconds"] == {"00_setup": 12.3}
