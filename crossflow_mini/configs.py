"""Config dataclasses as data: plain JSON, a stable hash that names checkpoints, and the way back.

Every config in the project is a frozen dataclass that lives beside the code it configures
(``TrainConfig`` in :mod:`crossflow_mini.training`, ``TextVEConfig`` in :mod:`crossflow_mini.core.text_ve`, ...);
:mod:`crossflow_mini.profiles` only chooses their values. This module turns any of them into JSON
(:func:`to_dict`), hashes it (:func:`config_hash`: checkpoints and caches are keyed by it) and rebuilds it
(:func:`from_dict`, also for fields typed as a union of config classes, told apart by their field names).

A field added after checkpoints were shipped is declared with :func:`added_field`: while it holds its
default it is left out of the JSON, so every config written before it existed keeps its hash (and its
checkpoint keeps loading); set to anything else, it is written and hashed like any other field. A field declared
with :func:`unhashed_field` (a recipe's sampling settings) is never part of the JSON or the hash: changing it never
invalidates a checkpoint.

Settings change by dot-path, from Python (:func:`with_overrides`) and from the command line (``--set KEY=VALUE``,
:func:`parse_overrides`), with a clear error that lists the settings that exist.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import json
import types
import typing
from typing import Any

_OMIT_IF_DEFAULT = "crossflow_mini.omit_if_default"
_UNHASHED = "crossflow_mini.unhashed"


def added_field(default: Any) -> Any:
    """A dataclass field added to a config after checkpoints were shipped: omitted from :func:`to_dict` (and so
    from :func:`config_hash`) while it equals ``default``."""
    return dataclasses.field(default=default, metadata={_OMIT_IF_DEFAULT: True})


def unhashed_field(default: Any) -> Any:
    """A field that is not part of a config's identity: left out of :func:`to_dict` and :func:`config_hash` (and
    filled with its default by :func:`from_dict`). Used for a recipe's sampling settings, which no weight depends
    on: they are stored beside the weights (``sampling.json``), not in the checkpoint's hashed config."""
    return dataclasses.field(default=default, metadata={_UNHASHED: True})


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        out = {}
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if f.metadata.get(_UNHASHED) or (f.metadata.get(_OMIT_IF_DEFAULT) and value == f.default):
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


# ------------------------------------------------------------------------------------------------ overrides
class OverrideError(ValueError):
    """A dot-path override names no setting, or gives a value of the wrong type; the message lists what exists."""


def _type_matches(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the type hint ``hint``, and the value converted to it (ints to floats, lists to
    tuples, dicts to a config)."""
    if hint is Any or hint is None:
        return True, value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            ok, conv = _type_matches(value, arg)
            if ok:
                return True, conv
        return False, value
    if hint is type(None):
        return value is None, value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            conv = [_type_matches(v, args[0]) for v in value]
        elif args and len(args) == len(value):
            conv = [_type_matches(v, a) for v, a in zip(value, args)]
        elif not args:
            return True, tuple(value)
        else:
            return False, value
        return all(ok for ok, _ in conv), tuple(v for _, v in conv)
    if origin in (dict, typing.Mapping) or hint in (dict,):
        return isinstance(value, dict), value
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return True, value
        if isinstance(value, dict):
            try:
                return True, from_dict(hint, value)
            except (ValueError, TypeError):
                return False, value
        return False, value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return True, float(value)
    if hint is int:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if hint is bool:
        return isinstance(value, bool), value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value


def settings(cfg: Any, prefix: str = "") -> list[str]:
    """Every dot-path a config can override (its leaves and its nested configs), in field order."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        out.append(key)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out += settings(value, key + ".")
    return out


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _apply(cfg: Any, items: list[tuple[list[str], Any, str]], root: Any) -> Any:
    """``cfg`` with every ``(path parts, value, full key)`` of ``items`` applied in one ``dataclasses.replace`` per
    level, so that checks across fields (``__post_init__``) see the final state, not a half-applied one."""
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        key = items[0][2]
        raise OverrideError(f"{key!r}: the value at {'.'.join(key.split('.')[:-len(items[0][0])]) or 'the top'} is a "
                            f"{type(cfg).__name__}, not a config with settings")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes: dict[str, Any] = {}
    nested: dict[str, list[tuple[list[str], Any, str]]] = {}
    for parts, value, key in items:
        name = parts[0]
        if name not in fields:
            where = key[: len(key) - len(".".join(parts))].rstrip(".")
            raise OverrideError(
                f"unknown setting {key!r}: {type(cfg).__name__}{f' (at {where!r})' if where else ''} has the "
                f"settings {', '.join(fields)}.{_suggest(key, settings(root))}")
        if len(parts) > 1:
            nested.setdefault(name, []).append((parts[1:], value, key))
            continue
        ok, converted = _type_matches(value, hints.get(name, Any))
        if not ok:
            raise OverrideError(f"{key!r} must be {_type_name(hints.get(name, Any))} (now {getattr(cfg, name)!r}), "
                                f"got {value!r}")
        changes[name] = converted
    for name, sub in nested.items():  # a nested edit applies on top of a whole replacement of the same field
        changes[name] = _apply(changes.get(name, getattr(cfg, name)), sub, root)
    try:
        return dataclasses.replace(cfg, **changes)
    except (ValueError, TypeError) as err:  # the config's own checks (__post_init__)
        keys = ", ".join(k for _, _, k in items)
        raise OverrideError(f"the settings {keys} are refused: {err}") from err


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def resolve_key(cfg: Any, key: str, default_root: str | None = "model") -> str:
    """The full dot-path of ``key`` in ``cfg``: ``key`` itself, or - when its first part is not a setting of
    ``cfg`` but is one of ``cfg.<default_root>`` - ``"<default_root>.<key>"`` (so ``source.kl_weight`` means
    ``model.source.kl_weight`` in a recipe)."""
    first = key.split(".")[0]
    names = {f.name for f in dataclasses.fields(cfg)}
    if first in names or default_root is None or default_root not in names:
        return key
    inner = getattr(cfg, default_root)
    if dataclasses.is_dataclass(inner) and first in {f.name for f in dataclasses.fields(inner)}:
        return f"{default_root}.{key}"
    return key


def with_overrides(cfg: Any, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """``cfg`` with settings changed by dot-path, e.g. ``with_overrides(recipe, {"model.source.kl_weight": 1e-2,
    "train.steps": 500})``; keyword arguments are top-level settings. Unknown keys raise :class:`OverrideError`
    listing the settings that exist; values are checked against the field's type (an int where a float is wanted is
    converted, a list where a tuple is wanted too). In a recipe, a key whose first part is a setting of its model
    may leave out ``model.`` (``source.kl_weight``)."""
    items = []
    for key, value in {**(overrides or {}), **kwargs}.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise OverrideError(f"an override key is a dot-path such as 'train.steps', got {key!r}")
        full = resolve_key(cfg, key)
        items.append((full.split("."), value, full))
    return _apply(cfg, items, cfg) if items else cfg


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal (``1e-2``, ``500``, ``True``, ``(32, 64)``, ``None``, ``'uniform'``),
    else the text itself (``uniform``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["train.steps=500", "source.kl_weight=1e-2"]`` (``--set`` arguments) -> ``{"train.steps": 500, ...}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OverrideError(f"--set takes KEY=VALUE (e.g. --set train.steps=500), got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


__all__ = ["added_field", "unhashed_field", "to_dict", "from_dict", "config_hash", "OverrideError", "settings",
           "resolve_key", "with_overrides", "parse_value", "parse_overrides"]
