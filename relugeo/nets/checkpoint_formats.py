"""What a checkpoint file is, safetensors weights, and state_dicts of a user's own module class.

Used by :mod:`relugeo.nets.checkpoint`. Nothing here unpickles: a file's kind
is read from its first bytes, safetensors files hold tensors only, and a
user's class is imported from its source (the caller names it), never
unpickled.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import re
import struct
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from ..errors import CheckpointError

__all__ = ["MODULE_PREFIX", "chain_sizes", "file_kind", "key_problems", "linear_chain", "load_user_module",
           "read_safetensors", "remap_by_order", "strip_prefix"]

MODULE_PREFIX = "module:"
# What to do when a file does not say its architecture (the CLI spells arch= as --arch).
WORKAROUNDS = (
    "save the model with torch.export.save (a .pt2 file holds the architecture), name its class "
    "with arch='module:path/to/model.py:ClassName' (or 'module:package.module:ClassName'), or build "
    "the model yourself and call relugeo.from_torch(model)"
)


def file_kind(data: bytes, suffix: str) -> str:
    """``"zip"``, ``"pickle"``, ``"safetensors"``, ``"onnx"`` or ``"unknown"``, from the first bytes.

    torch.save writes a zip archive (or, in the legacy format, a pickle);
    safetensors starts with an 8-byte little-endian header length and a JSON
    header; ONNX is a protobuf ``ModelProto`` starting with its ``ir_version``.
    """
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return "zip"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    if _is_safetensors(data):
        return "safetensors"
    if suffix.lower() == ".onnx" or (data[:1] == b"\x08" and (b"onnx" in data[:256] or b"pytorch" in data[:256])):
        return "onnx"
    return "unknown"


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    if not 2 <= n <= len(data) - 8 or data[8:9] != b"{":
        return False
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(header, dict)


def read_safetensors(data: bytes, where: str) -> dict:
    """The tensors of a safetensors file, keyed by name in natural order (weights only: it holds no code)."""
    try:
        from safetensors.torch import load as load_safetensors
    except ImportError:
        raise CheckpointError(
            f"{where} is a safetensors file; reading it needs the safetensors package: "
            f"pip install safetensors (or pip install 'relugeo[safetensors]')"
        ) from None
    try:
        tensors = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{where} is a truncated or corrupt safetensors file ({exc})") from exc
    # the file keeps no order: sort names naturally (fc2 before fc10), the order modules are usually declared in
    natural = sorted(tensors, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)])
    return {k: tensors[k] for k in natural}


def describe_unknown(data: bytes, where: str) -> CheckpointError:
    """The error for a file that is no checkpoint format relugeo knows (it never suggests trusting it)."""
    head = " ".join(f"{b:02x}" for b in data[:8])
    return CheckpointError(
        f"{where} is not a checkpoint: it is neither a zip archive (torch.save, torch.export) nor a "
        f"pickle, safetensors or ONNX file (it starts with bytes {head})"
    )


def describe_zip(data: bytes, where: str) -> CheckpointError | None:
    """The error for a zip archive that torch.load cannot read as a checkpoint, or None if it can."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return CheckpointError(f"{where} is a truncated or corrupt zip archive")
    if any(n.endswith("data.pkl") for n in names):
        return None
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return CheckpointError(
        f"{where} is a zip archive but not a torch checkpoint (no data.pkl; it holds {shown})"
    )


# ---------------------------------------------------------------------------
# matching state_dicts
# ---------------------------------------------------------------------------
def strip_prefix(sd: Mapping, expected: Mapping) -> Mapping:
    """Drop one common key prefix (``module.``, ``model.``, ...) when that makes the keys match."""
    if set(sd) == set(expected) or not all("." in k for k in sd):
        return sd
    heads = {k.split(".", 1)[0] for k in sd}
    if len(heads) != 1:
        return sd
    stripped = {k.split(".", 1)[1]: v for k, v in sd.items()}
    return stripped if set(stripped) == set(expected) else sd


def key_problems(sd: Mapping, expected: Mapping, against: str) -> list[str]:
    """Missing and unexpected keys and shape mismatches of ``sd`` against ``expected`` (empty: they match)."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"'{k}': checkpoint {tuple(sd[k].shape)} vs {against} {tuple(expected[k].shape)}"
             for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    return (([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {unexpected}"] if unexpected else [])
            + (["shape mismatch " + ", ".join(wrong)] if wrong else []))


# ---------------------------------------------------------------------------
# state_dicts of plain Linear chains
# ---------------------------------------------------------------------------
def linear_chain(sd: Mapping) -> list[tuple[str, str | None]] | None:
    """The (weight, bias) keys of a state_dict made only of Linear layers that chain, in order.

    Returns None unless every key is a 2-D ``<name>.weight`` or its 1-D
    ``<name>.bias`` and each layer's input width is the previous layer's
    output width: then the layer sizes are unambiguous.
    """
    weights = [k for k in sd if k.endswith("weight") and getattr(sd[k], "ndim", 0) == 2]
    if not weights:
        return None
    chain, used = [], set()
    for k in weights:
        b = k[: -len("weight")] + "bias"
        has_bias = b in sd and sd[b].ndim == 1 and sd[b].shape[0] == sd[k].shape[0]
        chain.append((k, b if has_bias else None))
        used |= {k, b} if has_bias else {k}
    if used != set(sd):
        return None
    for (w0, _), (w1, _) in zip(chain, chain[1:]):
        if sd[w0].shape[0] != sd[w1].shape[1]:
            return None
    return chain


def chain_sizes(sd: Mapping) -> list[int] | None:
    """Layer sizes [n_in, hidden..., n_out] of a Linear-chain state_dict (see :func:`linear_chain`)."""
    chain = linear_chain(sd)
    if chain is None:
        return None
    return [int(sd[chain[0][0]].shape[1])] + [int(sd[w].shape[0]) for w, _ in chain]


def remap_by_order(sd: Mapping, expected: Mapping) -> dict | None:
    """``sd`` renamed to the keys of ``expected`` layer by layer, when both are Linear chains of equal shapes."""
    got, want = linear_chain(sd), linear_chain(expected)
    if got is None or want is None or len(got) != len(want):
        return None
    out = {}
    for (gw, gb), (ww, wb) in zip(got, want):
        if tuple(sd[gw].shape) != tuple(expected[ww].shape) or (gb is None) != (wb is None):
            return None
        out[ww] = sd[gw]
        if gb is not None:
            out[wb] = sd[gb]
    return out


# ---------------------------------------------------------------------------
# a user's own class
# ---------------------------------------------------------------------------
def _import_target(target: str):
    """The object named by ``'path/to/file.py:Name'`` or ``'package.module:Name'``."""
    source, sep, name = target.rpartition(":")
    if not sep or not source or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        raise CheckpointError(
            f"module must be 'path/to/model.py:ClassName' or 'package.module:ClassName'; got {target!r}"
        )
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"module {target!r}: the file '{path}' does not exist")
        mod_name = f"_relugeo_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        added = str(path.resolve().parent) not in sys.path
        if added:  # imports next to the file work as they do when it is run
            sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise CheckpointError(f"module {target!r}: importing '{path}' failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if added:
                sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise CheckpointError(f"module {target!r}: cannot import '{source}': {exc}") from exc
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise CheckpointError(f"module {target!r}: '{source}' has no attribute '{name}'")
        obj = getattr(obj, part)
    return obj


def load_user_module(target: str, sd: Mapping, where: str) -> nn.Module:
    """Build ``target`` (a class or a function taking no arguments) and load the state_dict into it, strictly."""
    obj = _import_target(target)
    if not callable(obj):
        raise CheckpointError(f"module {target!r} is not a class or function")
    try:
        model = obj()
    except TypeError as exc:
        raise CheckpointError(
            f"module {target!r} cannot be built without arguments ({exc}); name a function in the file "
            f"that takes none and returns the model, e.g. 'model.py:make_model'"
        ) from exc
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"module {target!r} returned a {type(model).__name__}, not a torch.nn.Module")
    expected = model.state_dict()
    sd = dict(strip_prefix(sd, expected))
    problems = key_problems(sd, expected, "module")
    if problems:
        raise CheckpointError(f"{where}: the state_dict does not match module {target!r}: " + "; ".join(problems))
    dtypes = {t.dtype for t in sd.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        model = model.to(dtype=dtypes.pop())
    model.load_state_dict(sd, strict=True)
    return model.eval()
