"""Counting parameters: the one place that does it (model sizes are reported, and matched across methods).

The paper compares CrossFlow and the baseline at (nearly) equal parameter counts, counting CrossFlow's Text VE
(Table 1: 0.95B against 1.04B). :func:`count_parameters` counts everything a model trains; :func:`sampling_parameters`
leaves out what only the training loss uses (CrossFlow's target tower); :func:`parameter_report` breaks a count down
by submodule.
"""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (buffers, e.g. a fixed sincos table, are not parameters)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def sampling_parameters(model: nn.Module) -> int:
    """Parameters a model samples with: all but the modules its ``training_only()`` names (CrossFlow's target
    tower, which serves only the contrastive loss)."""
    extra = getattr(model, "training_only", lambda: [])()
    return count_parameters(model) - sum(count_parameters(m) for m in extra)


def parameter_report(model: nn.Module) -> dict:
    """``{"total", "trainable", "for_sampling", "by_module"}``: ``by_module`` maps each direct child (and each
    parameter held directly, e.g. ``pos_embed``) to its count, in definition order."""
    by_module = {name: p.numel() for name, p in model.named_parameters(recurse=False)}
    for name, child in model.named_children():
        by_module[name] = count_parameters(child)
    return {"total": count_parameters(model), "trainable": count_parameters(model, trainable_only=True),
            "for_sampling": sampling_parameters(model), "by_module": by_module}


__all__ = ["count_parameters", "sampling_parameters", "parameter_report"]
