"""Every task's pipeline in one import, called the way diffusers' pipelines are called::

    from crossflow_mini.pipelines import CrossFlowPipeline
    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes")
    images = pipe(["a large red circle on the left"], generator=torch.Generator().manual_seed(0)).images

Each pipeline lives in its task's package (``tasks/<task>/pipeline.py``); what they share - loading and saving,
argument checks, image inputs and outputs - is :mod:`crossflow_mini.tasks.pipeline`.
"""

from __future__ import annotations

from .tasks.captioning.pipeline import CAPTION_OUTPUT_TYPES, CaptioningPipeline, CaptioningPipelineOutput
from .tasks.depth.pipeline import DepthPipeline, DepthPipelineOutput
from .tasks.pipeline import (OUTPUT_TYPES, FlowPipeline, PipelineOutput, check_generator, image_batch, image_tensor,
                             to_output)
from .tasks.sr.pipeline import SuperResolutionPipeline, SuperResolutionPipelineOutput
from .tasks.t2i.pipeline import CrossFlowPipeline

__all__ = ["PipelineOutput", "FlowPipeline", "CrossFlowPipeline", "OUTPUT_TYPES", "to_output", "DepthPipeline",
           "DepthPipelineOutput", "CaptioningPipeline", "CaptioningPipelineOutput", "CAPTION_OUTPUT_TYPES",
           "image_batch", "image_tensor", "check_generator", "SuperResolutionPipeline",
           "SuperResolutionPipelineOutput"]
