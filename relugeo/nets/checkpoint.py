"""Safe loading and atomic saving of network checkpoints.

Formats read by :func:`load` and :func:`load_module`:

* the library's own checkpoint, written by :func:`save`: ``torch.save`` of
  ``{"format": "relugeo-checkpoint", "version": 1, "arch": <relugeo-arch spec>,
  "state_dict": {...}, "meta": {...}}``;
* a bare state_dict (also wrapped as ``{"state_dict": ...}``,
  ``{"model_state_dict": ...}`` or ``{"model": ...}``, keys optionally under
  one prefix such as ``module.``) together with an ``arch=`` spec;
* a state_dict of plain Linear layers under any names (``fc1.weight``, ...),
  mapped layer by layer onto an MLP ``arch=`` of the same shapes;
* a state_dict of the user's own class, with ``arch="module:model.py:Net"``
  (or ``"module:package.module:Net"``): the class is imported from its
  source and built without arguments, and the weights are loaded into it;
* a safetensors file (weights only; needs the ``safetensors`` package),
  read as a state_dict;
* a ``torch.export`` archive (``.pt2`` from :func:`torch.export.save`);
* a pickled whole ``nn.Module``, only with ``trust=True``.

Everything but the last is read without running pickled code: ``torch.save``
files go through ``torch.load(weights_only=True)``, and export archives are
inspected first and refused when they hold any entry that
:func:`torch.export.load` would unpickle. Files of no known kind (random
bytes, ONNX models) are named as such, never offered ``trust=True``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, InvalidNetworkError, UnsupportedLayerError
from ..io import atomic_path
from .checkpoint_formats import (
    MODULE_PREFIX,
    WORKAROUNDS,
    chain_sizes,
    describe_unknown,
    describe_zip,
    file_kind,
    key_problems,
    load_user_module,
    read_safetensors,
    remap_by_order,
    strip_prefix,
)
from .pwanet import PWANet
from .spec import ArchSpec, arch_of, arch_to_string, build_module, parse_arch
from .torch_import import from_torch

__all__ = ["load", "load_module", "save"]

CHECKPOINT_FORMAT = "relugeo-checkpoint"
CHECKPOINT_VERSION = 1
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_TRUST_HINT = (
    "unpickling runs arbitrary code, so relugeo refuses it by default; "
    "pass trust=True only if you trust the file's origin"
)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    return Path(os.fspath(path))


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _find_state_dict(obj: Mapping) -> Mapping | None:
    if _is_state_dict(obj):
        return obj
    for key in _WRAPPER_KEYS:
        if _is_state_dict(obj.get(key)):
            return obj[key]
    return None


def _is_module_target(arch: Any) -> bool:
    return isinstance(arch, str) and arch.startswith(MODULE_PREFIX)


def _skeleton(arch: dict) -> nn.Sequential:
    """``build_module(arch)`` on the meta device: shapes only, no RNG draws."""
    with torch.device("meta"):
        return build_module(arch)


def _match_state_dict(sd: Mapping, arch: dict, where: str) -> tuple[nn.Sequential, dict]:
    """A meta-device module for ``arch`` and the state_dict keyed to it.

    Raises CheckpointError naming missing and unexpected keys and shape mismatches.
    """
    module = _skeleton(arch)
    expected = module.state_dict()
    sd = dict(strip_prefix(sd, expected))
    if set(sd) != set(expected):
        # Linear layers under the user's own names (fc1, fc2, ...): matched in order when the shapes agree
        sd = remap_by_order(sd, expected) or sd
    problems = key_problems(sd, expected, "arch")
    if problems:
        sizes = chain_sizes(sd)
        hint = (f"; its Linear layers, in order, have the sizes {'-'.join(map(str, sizes))}" if sizes else
                f"; if it is not an MLP, {WORKAROUNDS}")
        raise CheckpointError(
            f"{where}: the state_dict does not match arch '{arch_to_string(arch)}': "
            + "; ".join(problems) + hint
        )
    return module, sd


def _module_from_state_dict(sd: Mapping, arch: dict, where: str) -> nn.Sequential:
    module, sd = _match_state_dict(sd, arch, where)
    module = module.to_empty(device="cpu")
    dtypes = {t.dtype for t in sd.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        module = module.to(dtype=dtypes.pop())
    try:
        module.load_state_dict(sd, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot load the state_dict: {exc}") from exc
    return module


def _arch_of_net(net: PWANet) -> dict:
    if not net.is_mlp:
        return {"type": repr(net)}
    slopes = {layer.uniform_slope for layer in net.hidden}
    sizes = [net.input_dim, *net.widths, net.output_dim]
    if len(slopes) > 1:
        return {"sizes": sizes, "slopes": sorted(slopes)}
    slope = slopes.pop() if slopes else 0.0
    return {"sizes": sizes, "activation": "relu" if slope == 0 else "leaky_relu",
            "negative_slope": slope}


def _agree(module: nn.Module, arch: ArchSpec, where: str) -> None:
    """Raise when a self-describing checkpoint and the given ``arch`` disagree."""
    want = parse_arch(arch)
    got = _arch_of_net(from_torch(module, check=False))
    same = got.get("sizes") == want["sizes"] and (
        len(want["sizes"]) == 2
        or (got.get("activation") == want["activation"]
            and got.get("negative_slope") == want["negative_slope"])
    )
    if not same:
        raise CheckpointError(
            f"{where}: the file describes its own architecture {got}, which disagrees with "
            f"arch='{arch_to_string(want)}'; drop arch= or pass the matching spec"
        )


# ---------------------------------------------------------------------------
# torch.export archives
# ---------------------------------------------------------------------------
def _zip_names(data: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _rel(name: str) -> str:
    """Archive member name without its top-level folder."""
    return name.split("/", 1)[1] if "/" in name else name


def _vet_export_archive(data: bytes, where: str) -> None:
    """Refuse an export archive that :func:`torch.export.load` would unpickle from.

    ``torch.export.load`` unpickles (without ``weights_only``) weights or
    constants flagged ``use_pickle``, custom and opaque objects, legacy
    ``.pt`` weight files, and sample inputs that fail a weights-only load.
    """
    def refuse(why: str) -> CheckpointError:
        return CheckpointError(f"{where}: the torch.export archive {why}; {_TRUST_HINT}")

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {_rel(n): n for n in z.namelist()}
        for rel in members:
            if rel.startswith(("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")):
                raise refuse(f"contains compiled or external artifacts ({rel})")
        models = [r[len("models/"):-len(".json")] for r in members
                  if r.startswith("models/") and r.endswith(".json")]
        if not models:
            raise CheckpointError(f"{where}: the torch.export archive holds no model")
        for name in models:
            for legacy in (f"data/weights/{name}.pt", f"data/constants/{name}.pt"):
                if legacy in members:
                    raise refuse(f"stores '{legacy}' in the legacy pickled format")
            for cfg_name, kind in ((f"data/weights/{name}_weights_config.json", "weight"),
                                   (f"data/constants/{name}_constants_config.json", "constant")):
                if cfg_name not in members:
                    continue
                try:
                    cfg = json.loads(z.read(members[cfg_name]).decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise CheckpointError(f"{where}: '{cfg_name}' is not valid JSON: {exc}") from exc
                for fqn, entry in (cfg.get("config") or {}).items():
                    if not isinstance(entry, Mapping) or entry.get("use_pickle", False):
                        raise refuse(f"stores {kind} '{fqn}' as a pickle")
                    if kind == "constant" and not str(entry.get("path_name", "")).startswith("tensor_"):
                        raise refuse(f"holds the non-tensor constant '{fqn}'")
            sample = f"data/sample_inputs/{name}.pt"
            if sample in members:
                raw = z.read(members[sample])
                if raw:
                    try:
                        torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
                    except Exception as exc:
                        raise refuse(
                            f"stores sample inputs that are not plain tensors ({type(exc).__name__})"
                        ) from exc


def _load_export(data: bytes, where: str, trust: bool) -> nn.Module:
    """The module of a torch.export archive (vetted first unless ``trust``)."""
    if not trust:
        _vet_export_archive(data, where)
    try:
        program = torch.export.load(io.BytesIO(data))
        return program.module()
    except Exception as exc:
        raise CheckpointError(
            f"{where}: cannot load the torch.export archive: {type(exc).__name__}: {exc}"
        ) from exc


# ---------------------------------------------------------------------------
# torch.save files
# ---------------------------------------------------------------------------
def _torch_load(data: bytes, where: str, trust: bool) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise CheckpointError(f"{where}: the file is truncated or corrupt ({exc})") from exc
        if not trust:
            found = re.search(r"Unsupported (?:global|class):?\s*(?:GLOBAL\s+)?([\w.]+)", str(exc))
            name = found.group(1) if found else ""
            if name.startswith("__main__."):
                raise CheckpointError(
                    f"{where}: the file is a pickled {name[len('__main__.'):]}, a class defined in the script "
                    f"that saved it (__main__); unpickling it needs that class importable here and runs "
                    f"arbitrary code. Save model.state_dict() instead and load it with "
                    f"arch='module:path/to/model.py:ClassName', or {WORKAROUNDS.split(', ', 1)[0]}"
                ) from None
            what = f" (it references {name})" if name else ""
            raise CheckpointError(
                f"{where}: the file holds pickled Python objects, such as a whole nn.Module, "
                f"beyond tensors and plain containers{what}; {_TRUST_HINT}"
            ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{where}: the file is truncated or corrupt, or not a checkpoint "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        found = re.search(r"Can't get attribute '([\w.]+)' on <module '([\w.]+)'", str(exc))
        name, home = (found.group(1), found.group(2)) if found else (None, getattr(exc, "name", None))
        what = f"class {name} from module {home}" if name else f"a class from module {home}"
        if home is not None and home.rsplit(".", 1)[-1] == "__main__":  # the running program's __main__
            what = f"class {name}, defined in the script that saved it (__main__),"
        raise CheckpointError(
            f"{where}: the pickle needs {what} which cannot be imported here. Save model.state_dict() "
            f"instead and load it with arch='module:path/to/model.py:ClassName', or "
            f"{WORKAROUNDS.split(', ', 1)[0]}"
        ) from exc
    except Exception as exc:
        raise CheckpointError(
            f"{where}: the file is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc


def _module_from_object(obj: Any, arch: ArchSpec | None, where: str) -> nn.Module:
    if _is_module_target(arch):
        sd = None
        if isinstance(obj, Mapping):
            sd = obj.get("state_dict") if obj.get("format") == CHECKPOINT_FORMAT else _find_state_dict(obj)
        if not _is_state_dict(sd):
            raise CheckpointError(
                f"{where}: holds a {type(obj).__name__}, not a state_dict to load into "
                f"{arch[len(MODULE_PREFIX):]!r}; drop arch= when the file carries its own architecture"
            )
        return load_user_module(arch[len(MODULE_PREFIX):], sd, where)
    if isinstance(obj, nn.Module):
        if arch is not None:
            _agree(obj, arch, where)
        return obj
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: holds a {type(obj).__name__}, not a checkpoint or state_dict")
    if "format" in obj:
        if obj["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{where}: unknown checkpoint format {obj['format']!r}; expected {CHECKPOINT_FORMAT!r}"
            )
        version = obj.get("version")
        if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{where}: checkpoint version must be an integer from 1 to "
                f"{CHECKPOINT_VERSION}; got {version!r}"
            )
        try:
            stored = parse_arch(obj.get("arch"))
        except (CheckpointError, TypeError) as exc:
            raise CheckpointError(f"{where}: the stored 'arch' is invalid: {exc}") from exc
        if arch is not None and parse_arch(arch) != stored:
            raise CheckpointError(
                f"{where}: the file's arch '{arch_to_string(stored)}' disagrees with "
                f"arch='{arch_to_string(arch)}'; drop arch= or pass the matching spec"
            )
        sd = obj.get("state_dict")
        if not _is_state_dict(sd):
            raise CheckpointError(f"{where}: 'state_dict' must map parameter names to tensors")
        return _module_from_state_dict(sd, stored, where)
    sd = _find_state_dict(obj)
    if sd is None:
        keys = list(obj)[:8]
        raise CheckpointError(
            f"{where}: unrecognised checkpoint content: a dict with keys {keys} that is neither "
            f"a relugeo checkpoint nor a state_dict of tensors"
        )
    if arch is None:
        sizes = chain_sizes(sd)
        keys = list(sd)[:4]
        if sizes is None:
            raise CheckpointError(
                f"{where}: holds a bare state_dict (keys {keys}{', ...' if len(sd) > 4 else ''}) with no "
                f"architecture, and its tensors are not a plain chain of Linear layers; {WORKAROUNDS}"
            )
        spec = f"mlp:{'-'.join(map(str, sizes))}"
        raise CheckpointError(
            f"{where}: holds a bare state_dict (keys {keys}{', ...' if len(sd) > 4 else ''}) with no "
            f"architecture. Its Linear layers, in order, have the sizes {'-'.join(map(str, sizes))}: for an "
            f"MLP with one activation pass arch='{spec}:relu' (or '{spec}:leaky_relu(<slope>)'); "
            f"otherwise {WORKAROUNDS}"
        )
    return _module_from_state_dict(sd, parse_arch(arch), where)


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def load_module(path, arch: ArchSpec | None = None, *, trust: bool = False) -> nn.Module:
    """Load a checkpoint as a PyTorch module.

    Parameters
    ----------
    path : str or os.PathLike
        A file in one of the formats of :mod:`relugeo.nets.checkpoint`.
    arch : str, dict or path-like, optional
        Architecture spec (see :func:`parse_arch`), or ``"module:<source>"``
        naming the user's own class (``"module:model.py:Net"`` or
        ``"module:package.module:Net"``; built without arguments, or a
        function returning the model). Required for a bare state_dict; for
        self-describing files (relugeo checkpoints, export archives, pickled
        modules) it is checked against the file when given. ``None`` means:
        take the architecture from the file.
    trust : bool, default False
        Allow unpickling arbitrary Python objects (a whole pickled
        ``nn.Module``, or an export archive with pickled entries). Unpickling
        runs code from the file; use it only for files you trust.

    Returns
    -------
    torch.nn.Module
        A ``build_module`` Sequential in the dtype of the stored weights, the
        ``GraphModule`` of an export archive, or the unpickled module.

    Raises
    ------
    CheckpointError
        The file is missing, truncated or corrupt, untrusted, needs an arch,
        or its state_dict does not match the arch (missing / unexpected keys,
        shapes); the message names the file.
    """
    p = _path(path)
    if not isinstance(trust, (bool, int)):
        raise TypeError(f"trust must be a bool; got {trust!r}")
    where = f"checkpoint '{p}'"
    if not p.exists():
        raise CheckpointError(f"{where} does not exist")
    if p.is_dir():
        raise CheckpointError(f"{where} is a directory; load() reads one checkpoint file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{where} cannot be read: {exc}") from exc
    if not data:
        raise CheckpointError(f"{where} is empty (0 bytes)")
    names = _zip_names(data)
    rel = {_rel(n) for n in names} if names is not None else set()
    if _is_module_target(arch) and ("archive_format" in rel or "serialized_exported_program.json" in rel):
        raise CheckpointError(f"{where} is a torch.export archive, which carries its own architecture; "
                              f"drop arch=")
    if "archive_format" in rel or (names is None and p.suffix == ".pt2"):
        if names is None:
            raise CheckpointError(
                f"{where} is a truncated or corrupt torch.export archive (not a readable zip)"
            )
        module = _load_export(data, where, bool(trust))
        if arch is not None:
            _agree(module, arch, where)
        return module
    if "serialized_exported_program.json" in rel:
        if not trust:
            raise CheckpointError(
                f"{where} is a torch.export archive in the pre-2.6 format, whose loader falls "
                f"back to unpickling; re-save it with torch.export.save, or {_TRUST_HINT}"
            )
        module = _load_export(data, where, True)
        if arch is not None:
            _agree(module, arch, where)
        return module
    kind = file_kind(data, p.suffix)
    if kind == "safetensors":
        return _module_from_object(read_safetensors(data, where), arch, where)
    if kind == "onnx":
        raise CheckpointError(
            f"{where} is an ONNX model, which relugeo does not read; export the PyTorch model with "
            f"torch.export.save (a .pt2 file), or save its state_dict"
        )
    if kind == "unknown":
        raise describe_unknown(data, where)
    if kind == "zip" and describe_zip(data, where) is not None:
        raise describe_zip(data, where)
    obj = _torch_load(data, where, bool(trust))
    return _module_from_object(obj, arch, where)


def load(path, arch: ArchSpec | None = None, *, trust: bool = False) -> PWANet:
    """Load a checkpoint as a :class:`PWANet`.

    Parameters
    ----------
    path : str or os.PathLike
        A relugeo checkpoint (from :func:`save`), a bare state_dict (with
        ``arch``), a ``torch.export`` archive (``.pt2``), or, with
        ``trust=True``, a pickled ``nn.Module``.
    arch : str, dict or path-like, optional
        Architecture spec such as ``"mlp:64-200-200-200-10:relu"``; required
        for a bare state_dict. See :func:`load_module`.
    trust : bool, default False
        Allow unpickling code from the file. See :func:`load_module`.

    Returns
    -------
    PWANet
        Converted with :func:`from_torch`, checked against the loaded
        module's own forward pass.

    Raises
    ------
    CheckpointError
        See :func:`load_module`.
    UnsupportedLayerError, InvalidNetworkError
        The loaded module cannot be converted (the message names the file).

    Examples
    --------
    >>> net = load("run/step_1000.pt")                          # doctest: +SKIP
    >>> net = load("weights.pt", arch="mlp:2-16-16-1:relu")     # doctest: +SKIP
    >>> net = load("model.pt2")                                 # doctest: +SKIP
    """
    module = load_module(path, arch, trust=trust)
    try:
        return from_torch(module)
    except (InvalidNetworkError, UnsupportedLayerError) as exc:
        raise type(exc)(f"checkpoint '{_path(path)}': {exc}") from exc


def _plain(value: Any, where: str) -> Any:
    """A copy of ``meta`` that a weights-only load can read back.

    NumPy scalars become Python numbers and NumPy arrays become tensors;
    anything but None, bool, int, float, str, tensors, lists, tuples and dicts
    is refused.
    """
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"meta keys must be str or int; got {k!r} at {where}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise CheckpointError(
        f"meta must hold only None, bool, int, float, str, tensors, arrays, lists and dicts so "
        f"that it loads without unpickling code; got {type(value).__name__} at {where}"
    )


def _atomic_save(obj: Any, p: Path) -> None:
    """``torch.save`` to a temp file beside ``p``, fsync, then rename over ``p``."""
    directory = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise CheckpointError(f"cannot save to '{p}': it is a directory")
    if not directory.is_dir():
        raise CheckpointError(f"cannot save to '{p}': the directory '{directory}' does not exist")
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def save(path, model: nn.Module, arch: ArchSpec | None = None, meta: Mapping | None = None) -> Path:
    """Write a relugeo checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its directory must exist. An existing file is
        replaced only once the new one is completely written.
    model : torch.nn.Module
        A module whose state_dict matches ``build_module(arch)``.
    arch : str, dict or path-like, optional
        Architecture spec; ``None`` infers it with :func:`arch_of`.
    meta : dict, optional
        Extra information (step, epoch, metrics, ...) made of None, bool,
        int, float, str, tensors, lists, tuples and dicts; NumPy scalars are
        stored as Python numbers and NumPy arrays as tensors. ``None``
        stores ``{}``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    CheckpointError
        The model does not match the arch, ``meta`` holds other types, or the
        directory does not exist. On any failure no file appears at ``path``
        and an existing file there is left as it was.

    Notes
    -----
    The file is ``torch.save`` of ``{"format": "relugeo-checkpoint",
    "version": 1, "arch": <relugeo-arch dict>, "state_dict": {name: tensor},
    "meta": meta}``, readable with ``torch.load(weights_only=True)``. It is
    written to a temporary file in the same directory, fsynced, and renamed
    over ``path`` with :func:`os.replace`.
    """
    p = _path(path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    spec = arch_of(model) if arch is None else parse_arch(arch)
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"meta must be a dict; got {type(meta).__name__}")
    meta = _plain(meta, "meta")
    sd = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    _, sd = _match_state_dict(sd, spec, f"cannot save '{p}'")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": spec,
        "state_dict": dict(sd),
        "meta": meta,
    }
    _atomic_save(payload, p)
    return p
