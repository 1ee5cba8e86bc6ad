"""A flow model from its config: CrossFlow or the standard flow-matching baseline."""

from __future__ import annotations

from .baseline import BaselineConfig, BaselineModel
from .crossflow import CrossFlowConfig, CrossFlowModel
from .flow_model import FlowModel


def build_model(cfg: CrossFlowConfig | BaselineConfig) -> FlowModel:
    """An untrained :class:`CrossFlowModel` or :class:`BaselineModel` for a model config."""
    if isinstance(cfg, BaselineConfig):
        return BaselineModel(cfg)
    if isinstance(cfg, CrossFlowConfig):
        return CrossFlowModel(cfg)
    raise TypeError(f"no flow model for a {type(cfg).__name__}; use CrossFlowConfig or BaselineConfig")


__all__ = ["build_model"]
