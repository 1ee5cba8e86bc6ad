"""A model from its config: CrossFlow, the standard flow-matching baseline, or the regression baseline."""

from __future__ import annotations

from torch import nn

from .baseline import BaselineConfig, BaselineModel
from .crossflow import CrossFlowConfig, CrossFlowModel
from .regression import RegressionConfig, RegressionModel

ModelConfig = CrossFlowConfig | BaselineConfig | RegressionConfig


def build_model(cfg: ModelConfig) -> nn.Module:
    """An untrained model for a model config: CrossFlow, the standard flow-matching baseline, or the regression
    baseline - all with the same ``loss`` / ``generate`` interface."""
    if isinstance(cfg, BaselineConfig):
        return BaselineModel(cfg)
    if isinstance(cfg, CrossFlowConfig):
        return CrossFlowModel(cfg)
    if isinstance(cfg, RegressionConfig):
        return RegressionModel(cfg)
    raise TypeError(f"no model for a {type(cfg).__name__}; use CrossFlowConfig, BaselineConfig or RegressionConfig")


__all__ = ["ModelConfig", "build_model"]
