"""The shared training loop: determinism, exact resume after an interruption, EMA, schedules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from crossflow_mini.training import TrainConfig
from crossflow_mini.training import STATE_FILE, EpochBatches, learning_rate, train

X = torch.randn(256, 4, generator=torch.Generator().manual_seed(1))
W = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
Y = X @ W
CFG = TrainConfig(steps=40, batch_size=16, lr=1e-2, warmup_steps=5, ckpt_every=5, ema_decay=0.9, log_every=1)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 2))


def _loss(model, idx):
    noisy = X[idx] + 0.05 * torch.randn(len(idx), 4)  # uses the global RNG, like time sampling does
    return ((model(noisy) - Y[idx]) ** 2).mean()


def _run(run_dir=None, stop_at=None, cfg=CFG):
    def cb(step, logs):
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt

    return train(_model(), _loss, EpochBatches(len(X), cfg.batch_size, cfg.seed), cfg, run_dir=run_dir, callback=cb)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_same_seed_same_numbers():
    a, b = _run(), _run()
    assert _same(a.model, b.model) and a.history["loss"] == b.history["loss"]


def test_loss_goes_down():
    r = _run()
    assert r.history["loss"][-1] < 0.5 * r.history["loss"][0]


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    full = _run()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, stop_at=23)  # dies between the checkpoints at 20 and 25
    assert (tmp_path / STATE_FILE).exists()
    resumed = _run(tmp_path)
    assert resumed.resumed_from == 20
    assert _same(full.model, resumed.model)
    assert _same(full.ema, resumed.ema)
    assert full.history["loss"] == resumed.history["loss"]


def test_resume_refuses_a_different_config(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, stop_at=7)
    other = TrainConfig(**{**CFG.__dict__, "lr": 5e-3})
    with pytest.raises(ValueError, match="different TrainConfig"):
        _run(tmp_path, cfg=other)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    import test_training as T
    from crossflow_mini.training import TrainConfig
    cfg = TrainConfig(**{{**T.CFG.__dict__, "steps": 400, "ckpt_every": 10}})
    slow = lambda m, idx: (time.sleep(0.01), T._loss(m, idx))[1]
    r = T.train(T._model(), slow, T.EpochBatches(len(T.X), cfg.batch_size, cfg.seed), cfg, run_dir=sys.argv[1])
    print("done", r.resumed_from)
""")


def test_killed_process_resumes(tmp_path):
    """A real SIGKILL midway (no clean-up code runs); the next run continues from the last checkpoint and
    ends with the same weights as an uninterrupted run."""
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(__file__)))
    run_dir = tmp_path / "run"
    env = {**os.environ, "CROSSFLOW_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env=env)
    deadline = time.time() + 60
    while not (run_dir / STATE_FILE).exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    out = subprocess.run([sys.executable, str(script), str(run_dir)], env=env, capture_output=True, text=True,
                         check=True).stdout
    resumed_from = int(out.split()[-1])
    assert 0 < resumed_from < 400
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 400, "ckpt_every": 10})
    full = _run(cfg=cfg)
    from crossflow_mini.training import _load_state  # the final state file holds the resumed run's weights

    model, ema = _model(), _model()
    opt = torch.optim.AdamW(model.parameters())
    _, _, seconds = _load_state(run_dir / STATE_FILE, model, ema, opt, cfg)
    assert _same(full.model, model)
    assert seconds is not None and seconds > 0  # both parts' training time, added up


def test_epoch_batches_cover_every_item_once_per_epoch():
    b = EpochBatches(10, 3, seed=4)
    epoch0 = torch.cat([b(s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 9
    assert not torch.equal(torch.cat([b(s) for s in range(3, 6)]), epoch0)
    assert torch.equal(EpochBatches(10, 3, seed=4)(4), b(4))  # a pure function of (seed, step)


def test_epoch_batches_bad_sizes():
    with pytest.raises(ValueError, match="empty"):
        EpochBatches(0, 1)
    with pytest.raises(ValueError, match="larger than the data set"):
        EpochBatches(5, 8)


def test_learning_rate_schedules():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, lr_schedule="cosine")
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9) == pytest.approx(1.0)
    assert learning_rate(cfg, 55) == pytest.approx(0.5)
    assert learning_rate(cfg, 100) == pytest.approx(0.0)
    const = TrainConfig(steps=100, lr=2.0, warmup_steps=0)
    assert learning_rate(const, 77) == 2.0
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate(TrainConfig(lr_schedule="linear", warmup_steps=0), 3)


def test_ema_lags_the_model():
    r = _run()
    assert not _same(r.model, r.ema)
    no_ema = _run(cfg=TrainConfig(**{**CFG.__dict__, "ema_decay": 0.0}))
    assert no_ema.ema is no_ema.model


def test_training_time_adds_up_over_an_interrupted_run(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, stop_at=22)
    resumed = _run(tmp_path)
    assert resumed.resumed_from == 20 and resumed.seconds is not None
    from crossflow_mini.training import _load_state

    model, ema = _model(), _model()
    _, _, saved = _load_state(tmp_path / STATE_FILE, model, ema, torch.optim.AdamW(model.parameters()), CFG)
    assert saved == resumed.seconds
    assert _run().seconds > 0 and _run().resumed_from == 0  # no run folder: this call's time alone


def test_snapshots_are_the_models_of_shorter_runs_and_do_not_change_the_run(tmp_path):
    snaps: dict[int, dict[str, torch.Tensor]] = {}

    def on_snapshot(step, ema):
        snaps[step] = {k: v.clone() for k, v in ema.state_dict().items()}

    long = train(_model(), _loss, EpochBatches(len(X), CFG.batch_size, CFG.seed), CFG, snapshot_steps=(10, 25),
                 on_snapshot=on_snapshot)
    assert sorted(snaps) == [10, 25]
    short = _run(cfg=TrainConfig(**{**CFG.__dict__, "steps": 10}))  # constant lr after warm-up: same path
    for k, v in short.ema.state_dict().items():
        assert torch.equal(snaps[10][k], v)
    plain = _run()
    for k, v in plain.ema.state_dict().items():
        assert torch.equal(long.ema.state_dict()[k], v)  # taking snapshots leaves the run as it was


def test_a_resumed_run_takes_only_the_later_snapshots(tmp_path):
    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        _run(run_dir=tmp_path, stop_at=17)
    train(_model(), _loss, EpochBatches(len(X), CFG.batch_size, CFG.seed), CFG, run_dir=tmp_path,
          snapshot_steps=(10, 25, 40), on_snapshot=lambda s, m: seen.append(s))
    assert seen == [25, 40]


def test_training_works_where_the_caller_switched_gradients_off():
    """A notebook that samples under torch.set_grad_enabled(False) may train a missing checkpoint on the fly."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    data = torch.randn(16, 2)
    cfg = TrainConfig(steps=3, batch_size=16, lr=1e-2, warmup_steps=0, ema_decay=0.0, ckpt_every=0, log_every=1)
    before = model.weight.detach().clone()
    with torch.no_grad():
        train(model, lambda m, b: (m(b) ** 2).mean(), lambda step: data, cfg)
    assert not torch.equal(before, model.weight.detach())
