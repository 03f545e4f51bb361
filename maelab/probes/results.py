"""Theory-probe results as plain JSON: what a probe record (`maelab.run_records`) stores of a
result dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, dicts with int keys and tensors -> plain JSON values (NaN -> null)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else obj
    return obj
