"""Checks a student runs after an exercise: each says right or wrong, and why, in the notebook.

One module per notebook (``nb00`` ... ``nb10``); each check is a function ``exercise_<n>(answer, ...)`` that prints
a one-line verdict and returns ``True`` / ``False`` (an autograder cell asserts the return value). A check compares
the answer with one computed from the library or the data at run time, never with a pasted number, so it holds
under every profile.

    from crossflow_mini.checks import nb01
    nb01.exercise_2(my_answer)        # prints "correct: ..." or "not yet: ... (hint)"
"""

from __future__ import annotations

import math
from typing import Any

import torch

RIGHT = "correct"
WRONG = "not yet"


def verdict(ok: bool, what: str, hint: str = "") -> bool:
    """Print ``correct: what`` or ``not yet: what (hint)`` and return ``ok``."""
    print(f"{RIGHT}: {what}" if ok else f"{WRONG}: {what}" + (f" - {hint}" if hint else ""))
    return bool(ok)


def close(answer: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Whether ``answer`` equals ``expected`` within tolerance (numbers, sequences or tensors of the same shape)."""
    try:
        a = torch.as_tensor(answer, dtype=torch.float64)
        e = torch.as_tensor(expected, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    if a.shape != e.shape:
        return False
    return bool(torch.allclose(a, e, rtol=rtol, atol=atol)) and not any(math.isnan(x) for x in a.flatten().tolist())


__all__ = ["RIGHT", "WRONG", "verdict", "close"]
