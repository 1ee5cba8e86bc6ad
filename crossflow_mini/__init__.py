"""crossflow_mini: a small, readable reproduction of CrossFlow ("Flowing from Words to Pixels", CVPR 2025).

Submodules are imported on use (``from crossflow_mini import flow``), so importing the package is cheap.
Conventions used everywhere: images are tensors in [-1, 1]; t = 0 is the source and t = 1 the target;
guidance is v = v_uncond + w (v_cond - v_uncond), so w = 1 is the conditional model.
"""

__version__ = "0.1.0"
