"""crossflow_mini.parallel: jobs side by side in spawned workers, results in job order, errors surfaced."""

import os

import pytest
import torch

from crossflow_mini.parallel import default_processes, side_by_side


def test_results_come_back_in_job_order_from_two_workers():
    jobs = [{"job": i, "payload": torch.arange(i + 1)} for i in range(4)]
    out = side_by_side(dict, jobs, processes=2)
    assert [o["job"] for o in out] == [0, 1, 2, 3]
    assert all(torch.equal(o["payload"], torch.arange(i + 1)) for i, o in enumerate(out))


def test_each_worker_gets_its_share_of_the_cores():
    threads = side_by_side(torch.get_num_threads, [{}, {}], processes=2)
    assert threads == [max(1, (os.cpu_count() or 1) // 2)] * 2


def test_one_process_runs_inline_with_the_same_results():
    jobs = [{"a": 1}, {"b": 2}]
    assert side_by_side(dict, jobs, processes=1) == side_by_side(dict, jobs, processes=2) == jobs


def test_a_failing_job_raises_here():
    with pytest.raises(FileNotFoundError):
        side_by_side(open, [{"file": "/nonexistent/crossflow_mini"}, {"file": os.devnull}], processes=2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one job"):
        side_by_side(dict, [])
    with pytest.raises(ValueError, match="processes"):
        side_by_side(dict, [{}], processes=0)
    assert default_processes(1) == 1 and default_processes(100) == (os.cpu_count() or 1)


def test_modules_are_refused_weights_load_inside_the_job():
    with pytest.raises(TypeError, match="checkpoint's name"):
        side_by_side(dict, [{"model": torch.nn.Linear(2, 2)}], processes=1)
