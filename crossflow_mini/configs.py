"""Config dataclasses as data: plain JSON, a stable hash that names checkpoints, and the way back.

Every config in the project is a frozen dataclass that lives beside the code it configures
(``TrainConfig`` in :mod:`crossflow_mini.training`, ``TextVEConfig`` in :mod:`crossflow_mini.core.text_ve`, ...);
:mod:`crossflow_mini.profiles` only chooses their values. This module turns any of them into JSON
(:func:`to_dict`), hashes it (:func:`config_hash`: checkpoints and caches are keyed by it) and rebuilds it
(:func:`from_dict`, also for fields typed as a union of config classes, told apart by their field names).

A field added after checkpoints were shipped is declared with :func:`added_field`: while it holds its
default it is left out of the JSON, so every config written before it existed keeps its hash (and its
checkpoint keeps loading); set to anything else, it is written and hashed like any other field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any

_OMIT_IF_DEFAULT = "crossflow_mini.omit_if_default"


def added_field(default: Any) -> Any:
    """A dataclass field added to a config after checkpoints were shipped: omitted from :func:`to_dict` (and so
    from :func:`config_hash`) while it equals ``default``."""
    return dataclasses.field(default=default, metadata={_OMIT_IF_DEFAULT: True})


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        out = {}
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if f.metadata.get(_OMIT_IF_DEFAULT) and value == f.default:
                continue
            out[f.name] = to_dict(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def _dataclass_options(hint: Any) -> list[type]:
    """The dataclass types a field's type hint allows (one for ``Cfg``, several for ``A | B``)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if isinstance(a, type) and dataclasses.is_dataclass(a)]
    return []


def _pick(options: list[type], data: dict[str, Any], where: str) -> type:
    """The one option whose fields can hold ``data`` (no unknown keys, every required field present)."""
    fits = []
    for cls in options:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = {n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        if set(data) <= set(fields) and required <= set(data):
            fits.append(cls)
    if len(fits) > 1:  # prefer the option that uses the most of its own fields
        best = max(len(set(data) & {f.name for f in dataclasses.fields(c)}) / len(dataclasses.fields(c))
                   for c in fits)
        fits = [c for c in fits
                if len(set(data) & {f.name for f in dataclasses.fields(c)}) / len(dataclasses.fields(c)) == best]
    if len(fits) != 1:
        names = ", ".join(c.__name__ for c in options)
        raise ValueError(f"{where}: the stored fields {sorted(data)} fit {len(fits)} of the config types "
                         f"{names}; the config was written by another version of the code")
    return fits[0]


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild dataclass ``cls`` from :func:`to_dict` output; unknown or missing keys raise ``ValueError``."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise ValueError(f"{cls.__name__} needs field {name!r}")
            continue
        value = data[name]
        options = _dataclass_options(hints.get(name))
        if options and isinstance(value, dict):
            value = from_dict(_pick(options, value, f"{cls.__name__}.{name}"), value)
        else:
            value = _tuples(value)
        kwargs[name] = value
    return cls(**kwargs)


def config_hash(cfg: Any) -> str:
    """A short, stable hash of a config (its canonical JSON): names checkpoints and caches."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


__all__ = ["added_field", "to_dict", "from_dict", "config_hash"]
