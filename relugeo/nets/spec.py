"""Architecture specs: short strings, the library's JSON spec, and MLP modules.

A spec describes an MLP ``[Linear, act, Linear, act, ..., Linear]`` with one
activation type for every hidden layer. It is written either as a short string::

    mlp:64-200-200-200-10:relu
    mlp:2-16-16-1:leaky_relu          (negative slope 0.01, PyTorch's default)
    mlp:2-16-1:leaky_relu(0.2)

or as the JSON-able dict the library stores next to weights::

    {"format": "relugeo-arch", "version": 1, "type": "mlp",
     "sizes": [2, 16, 1], "activation": "leaky_relu", "negative_slope": 0.2}
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from torch import nn

from ..errors import CheckpointError

__all__ = ["parse_arch", "build_module", "arch_to_string", "arch_of"]

ARCH_FORMAT = "relugeo-arch"
ARCH_VERSION = 1
DEFAULT_LEAKY_SLOPE = 0.01
GRAMMAR = (
    "'mlp:<n_in>-<hidden>-...-<n_out>:<activation>' with <activation> one of "
    "'relu', 'leaky_relu' (slope 0.01) or 'leaky_relu(<slope>)', "
    "e.g. 'mlp:64-200-200-200-10:relu' or 'mlp:2-16-1:leaky_relu(0.2)'"
)
_KEYS = ("format", "version", "type", "sizes", "activation", "negative_slope")
_SPEC_RE = re.compile(
    r"""^\s*mlp\s*:\s*(?P<sizes>[^:]*?)\s*
        (?::\s*(?P<act>[a-z_]+)\s*(?:\(\s*(?P<slope>[^()]*?)\s*\))?\s*)?$""",
    re.IGNORECASE | re.VERBOSE,
)

ArchSpec = Union[str, "os.PathLike[str]", Mapping]


def _bad(spec: Any, problem: str) -> CheckpointError:
    return CheckpointError(f"invalid architecture spec {spec!r}: {problem}; expected {GRAMMAR}")


def _parse_string(spec: str) -> dict:
    m = _SPEC_RE.match(spec)
    if m is None:
        raise _bad(spec, "it does not follow the grammar")
    parts = [p.strip() for p in m["sizes"].split("-")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise _bad(spec, "sizes must be positive integers separated by '-'")
    act = (m["act"] or "relu").lower()
    slope_text = m["slope"]
    if act == "relu":
        if slope_text is not None:
            raise _bad(spec, "relu takes no slope; use leaky_relu(<slope>)")
        slope: Any = 0.0
    elif act == "leaky_relu":
        if slope_text is None:
            slope = DEFAULT_LEAKY_SLOPE
        else:
            try:
                slope = float(slope_text)
            except ValueError:
                raise _bad(spec, f"the leaky_relu slope {slope_text!r} is not a number") from None
    else:
        raise _bad(spec, f"unknown activation {m['act']!r}")
    return _normalise(
        {"type": "mlp", "sizes": [int(p) for p in parts], "activation": act, "negative_slope": slope},
        spec,
    )


def _normalise(d: Mapping, spec: Any) -> dict:
    """Validate a spec dict and return it with every key filled in."""
    unknown = sorted(set(d) - set(_KEYS), key=str)
    if unknown:
        raise _bad(spec, f"unknown key(s) {unknown}; a relugeo-arch spec has keys {list(_KEYS)}")
    if d.get("format", ARCH_FORMAT) != ARCH_FORMAT:
        raise _bad(spec, f"'format' must be {ARCH_FORMAT!r}; got {d.get('format')!r}")
    version = d.get("version", ARCH_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= ARCH_VERSION:
        raise _bad(spec, f"'version' must be an integer from 1 to {ARCH_VERSION}; got {version!r}")
    if d.get("type", None) != "mlp":
        raise _bad(spec, f"'type' must be 'mlp'; got {d.get('type')!r}")
    sizes = d.get("sizes")
    if (
        not isinstance(sizes, (list, tuple))
        or len(sizes) < 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)
    ):
        raise _bad(
            spec,
            f"'sizes' must list at least two positive integers (inputs, ..., outputs); got {sizes!r}",
        )
    act = d.get("activation", "relu")
    if act not in ("relu", "leaky_relu"):
        raise _bad(spec, f"'activation' must be 'relu' or 'leaky_relu'; got {act!r}")
    default = 0.0 if act == "relu" else DEFAULT_LEAKY_SLOPE
    slope = d.get("negative_slope", default)
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
        raise _bad(spec, f"'negative_slope' must be a finite number; got {slope!r}")
    if act == "relu" and slope != 0:
        raise _bad(spec, f"relu has negative_slope 0; got {slope!r} (use 'leaky_relu')")
    return {
        "format": ARCH_FORMAT,
        "version": ARCH_VERSION,
        "type": "mlp",
        "sizes": [int(s) for s in sizes],
        "activation": act,
        "negative_slope": float(slope),
    }


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"cannot read architecture spec file '{path}': {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"architecture spec file '{path}' is not valid JSON: {exc}") from exc


def parse_arch(spec: ArchSpec) -> dict:
    """Parse an architecture spec into the normalised JSON-able dict.

    Parameters
    ----------
    spec : str, dict or path-like
        A short string (``"mlp:64-200-10:relu"``, ``"mlp:2-16-1:leaky_relu(0.2)"``;
        a missing activation means relu), a dict in the ``relugeo-arch``
        format (``format`` and ``version`` may be omitted), JSON text of such
        a dict, or the path of a ``.json`` file holding one.

    Returns
    -------
    dict
        ``{"format": "relugeo-arch", "version": 1, "type": "mlp",
        "sizes": list of int, "activation": "relu" | "leaky_relu",
        "negative_slope": float}``; ``negative_slope`` is 0.0 for relu.

    Raises
    ------
    CheckpointError
        The spec does not follow the grammar (the message names the spec and
        shows the grammar) or a spec file cannot be read.
    TypeError
        ``spec`` is of another type.

    Examples
    --------
    >>> parse_arch("mlp:2-16-1:leaky_relu(0.2)")["negative_slope"]
    0.2
    """
    if isinstance(spec, Mapping):
        return _normalise(spec, dict(spec))
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        return _from_json(_read_json(path), path)
    if not isinstance(spec, str):
        raise TypeError(
            f"spec must be a spec string, a dict or a path to a JSON spec; got {type(spec).__name__}"
        )
    text = spec.strip()
    if re.match(r"mlp\s*:", text, re.IGNORECASE):
        return _parse_string(spec)
    if text.startswith("{"):
        try:
            return _from_json(json.loads(text), spec)
        except json.JSONDecodeError as exc:
            raise _bad(spec, f"it looks like JSON but does not parse ({exc})") from None
    if text.lower().endswith(".json") or os.path.isfile(text):
        return _from_json(_read_json(Path(text)), Path(text))
    raise _bad(spec, "it is neither a spec string nor the path of a JSON spec file")


def _from_json(obj: Any, source: Any) -> dict:
    if not isinstance(obj, Mapping):
        raise _bad(source, f"the JSON holds a {type(obj).__name__}, not an object")
    return _normalise(obj, source if isinstance(source, str) else str(source))


def arch_to_string(arch: ArchSpec) -> str:
    """The short string of an architecture spec.

    Parameters
    ----------
    arch : str, dict or path-like
        Any spec :func:`parse_arch` accepts.

    Returns
    -------
    str
        E.g. ``"mlp:2-16-1:leaky_relu(0.2)"``; ``parse_arch`` of it gives the
        same dict back (slopes are written with ``repr`` so they round-trip).
    """
    a = parse_arch(arch)
    sizes = "-".join(str(s) for s in a["sizes"])
    if a["activation"] == "relu":
        act = "relu"
    elif a["negative_slope"] == DEFAULT_LEAKY_SLOPE:
        act = "leaky_relu"
    else:
        act = f"leaky_relu({a['negative_slope']!r})"
    return f"mlp:{sizes}:{act}"


def build_module(spec: ArchSpec) -> nn.Sequential:
    """A freshly initialised ``nn.Sequential`` for a spec.

    Parameters
    ----------
    spec : str, dict or path-like
        Any spec :func:`parse_arch` accepts.

    Returns
    -------
    torch.nn.Sequential
        ``[Linear, act, Linear, act, ..., Linear]`` in PyTorch's default
        dtype and initialisation; its state_dict keys are ``"0.weight"``,
        ``"0.bias"``, ``"2.weight"``, ...
    """
    a = parse_arch(spec)
    sizes = a["sizes"]
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            if a["activation"] == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.LeakyReLU(a["negative_slope"]))
    return nn.Sequential(*layers)


def arch_of(model: nn.Module) -> dict:
    """The spec of an ``nn.Sequential`` laid out as :func:`build_module` lays it out.

    Parameters
    ----------
    model : torch.nn.Sequential
        ``[Linear, act, Linear, act, ..., Linear]``, flat, every Linear with
        a bias, one activation type and slope throughout.

    Returns
    -------
    dict
        The normalised spec (see :func:`parse_arch`).

    Raises
    ------
    CheckpointError
        The model does not follow that layout; the message names the first
        layer that breaks it.
    """
    def fail(problem: str) -> CheckpointError:
        return CheckpointError(
            f"arch_of: model must be a flat nn.Sequential [Linear, act, Linear, ..., Linear] "
            f"as build_module() makes it; {problem}"
        )

    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        raise fail(f"got {type(model).__name__}")
    children = list(model.named_children())
    if len(children) % 2 == 0:
        raise fail(f"it has {len(children)} layers; the pattern has an odd number")
    sizes: list[int] = []
    act: tuple[str, float] | None = None
    for i, (name, layer) in enumerate(children):
        if name != str(i):
            raise fail(f"layer {i} is named {name!r}; expected {str(i)!r}")
        if i % 2 == 0:
            if type(layer) is not nn.Linear:
                raise fail(f"layer '{name}' is {type(layer).__name__}; expected Linear")
            if layer.bias is None:
                raise fail(f"layer '{name}' (Linear) has no bias")
            if sizes and layer.in_features != sizes[-1]:
                raise fail(f"layer '{name}' takes {layer.in_features} inputs but the previous "
                           f"Linear gives {sizes[-1]}")
            if not sizes:
                sizes.append(layer.in_features)
            sizes.append(layer.out_features)
        else:
            if type(layer) is nn.ReLU:
                this = ("relu", 0.0)
            elif type(layer) is nn.LeakyReLU:
                this = ("leaky_relu", float(layer.negative_slope))
            else:
                raise fail(f"layer '{name}' is {type(layer).__name__}; expected ReLU or LeakyReLU")
            if act is not None and this != act:
                raise fail(f"layer '{name}' is {this[0]} with slope {this[1]} but earlier layers "
                           f"are {act[0]} with slope {act[1]}")
            act = this
    activation, slope = act if act is not None else ("relu", 0.0)
    return _normalise(
        {"type": "mlp", "sizes": sizes, "activation": activation, "negative_slope": slope},
        f"arch_of({type(model).__name__})",
    )
