"""The method itself, task-agnostic and free of I/O: paths, samplers, guidance, source encoders, velocity networks,
and the CrossFlow and baseline models built from them."""

from .baseline import BaselineConfig, BaselineModel
from .build import build_model
from .crossflow import CrossFlowConfig, CrossFlowModel
from .flow_model import FlowLoss, FlowModel

__all__ = ["BaselineConfig", "BaselineModel", "CrossFlowConfig", "CrossFlowModel", "FlowLoss", "FlowModel",
           "build_model"]
