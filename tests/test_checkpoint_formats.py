"""Checkpoints as users bring them: their own classes, safetensors, __main__ pickles, and files that are no checkpoint.

Messages are asserted word for word: they must say what the file is and what to do, and never offer
``trust`` for a file that is not a recognised pickle.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import relugeo as rg
from relugeo.cli import app

runner = CliRunner()

MODEL_SOURCE = textwrap.dedent("""
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class NeedsWidth(Net):
        def __init__(self, width):
            super().__init__()
""")
WORKAROUNDS = ("save the model with torch.export.save (a .pt2 file holds the architecture), name its class with "
               "arch='module:path/to/model.py:ClassName' (or 'module:package.module:ClassName'), or build the model "
               "yourself and call relugeo.from_torch(model)")
CLI_WORKAROUNDS = ("save the model with torch.export.save (a .pt2 file holds the architecture), name its class with "
                   "--module 'path/to/model.py:ClassName' (or 'package.module:ClassName'), or build the model "
                   "yourself and call relugeo.from_torch(model)")


@pytest.fixture()
def user(tmp_path):
    """A user's model file, a state_dict of its class, a point file, and the model itself."""
    (tmp_path / "model.py").write_text(MODEL_SOURCE)
    sys.path.insert(0, str(tmp_path))
    try:
        namespace = {}
        exec(compile(MODEL_SOURCE, str(tmp_path / "model.py"), "exec"), namespace)
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    model = namespace["Net"]()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(6, 4)))
    return tmp_path, model


def _error(res) -> str:
    """The one-line error of a failed command, without the 'error: ' prefix."""
    lines = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, res.output
    return lines[0][len("error: "):]


def _lc(args):
    return runner.invoke(app, ["lc", *map(str, args), "-r", "0.5", "--method", "vertex", "-P", "2"])


def test_random_bytes_are_not_a_checkpoint_and_trust_is_not_offered(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(range(7, 250)) * 3)
    want = (f"checkpoint '{path}' is not a checkpoint: it is neither a zip archive (torch.save, torch.export) nor a "
            f"pickle, safetensors or ONNX file (it starts with bytes 07 08 09 0a 0b 0c 0d 0e)")
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path)
    assert str(info.value) == want
    np.save(tmp_path / "points.npy", np.zeros((3, 4)))
    res = _lc([path, "--data", tmp_path / "points.npy", "--out", tmp_path / "lc.csv"])
    assert res.exit_code == 2 and _error(res) == want
    assert "trust" not in res.output


def test_zip_archives_and_onnx_files_are_named(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "notes.pt", "w") as z:
        z.writestr("notes/readme.txt", "hello")
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(tmp_path / "notes.pt")
    assert str(info.value) == (f"checkpoint '{tmp_path / 'notes.pt'}' is a zip archive but not a torch checkpoint "
                               f"(no data.pkl; it holds notes/readme.txt)")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.1" + bytes(40))
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(tmp_path / "model.onnx")
    assert str(info.value) == (f"checkpoint '{tmp_path / 'model.onnx'}' is an ONNX model, which relugeo does not "
                               f"read; export the PyTorch model with torch.export.save (a .pt2 file), or save its "
                               f"state_dict")


def test_a_pickle_of_a_class_from_the_saving_script_is_named_as_such(tmp_path):
    script = MODEL_SOURCE + "\ntorch.save(Net(), 'whole.pt')\n"
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, capture_output=True)
    path = tmp_path / "whole.pt"
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path)
    assert str(info.value) == (
        f"checkpoint '{path}': the file is a pickled Net, a class defined in the script that saved it (__main__); "
        f"unpickling it needs that class importable here and runs arbitrary code. Save model.state_dict() instead "
        f"and load it with arch='module:path/to/model.py:ClassName', or save the model with torch.export.save "
        f"(a .pt2 file holds the architecture)")
    np.save(tmp_path / "points.npy", np.zeros((3, 4)))
    res = _lc([path, "--data", tmp_path / "points.npy", "--trust", "--out", tmp_path / "lc.csv"])
    assert res.exit_code == 2
    assert _error(res) == (
        f"checkpoint '{path}': the pickle needs class Net, defined in the script that saved it (__main__), which "
        f"cannot be imported here. Save model.state_dict() instead and load it with --module "
        f"'path/to/model.py:ClassName', or save the model with torch.export.save (a .pt2 file holds the "
        f"architecture)")
    assert "truncated" not in res.output and not (tmp_path / "lc.csv").exists()


def test_a_state_dict_of_a_users_class_without_an_architecture_names_the_sizes_and_the_ways_out(user):
    d, _ = user
    path = d / "sd.pt"
    head = (f"checkpoint '{path}': holds a bare state_dict (keys ['fc1.weight', 'fc1.bias', 'fc2.weight', "
            f"'fc2.bias']) with no architecture. Its Linear layers, in order, have the sizes 4-8-3: for an MLP with "
            f"one activation pass ")
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path)
    assert str(info.value) == head + (f"arch='mlp:4-8-3:relu' (or 'mlp:4-8-3:leaky_relu(<slope>)'); otherwise "
                                      f"{WORKAROUNDS}")
    res = _lc([path, "--data", d / "points.npy", "--out", d / "lc.csv"])
    assert res.exit_code == 2
    assert _error(res) == head + (f"--arch 'mlp:4-8-3:relu' (or 'mlp:4-8-3:leaky_relu(<slope>)'); otherwise "
                                  f"{CLI_WORKAROUNDS}")
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path, "mlp:4-9-3:relu")
    assert str(info.value) == (
        f"checkpoint '{path}': the state_dict does not match arch 'mlp:4-9-3:relu': missing keys ['0.weight', "
        f"'0.bias', '2.weight', '2.bias']; unexpected keys ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']; "
        f"its Linear layers, in order, have the sizes 4-8-3")


@pytest.mark.parametrize("how", ["arch", "module-file", "module-import"])
def test_a_state_dict_of_a_users_class_loads_by_arch_or_by_its_class(user, how, monkeypatch):
    d, model = user
    monkeypatch.syspath_prepend(str(d))
    arch = {"arch": "mlp:4-8-3:relu", "module-file": f"module:{d / 'model.py'}:Net",
            "module-import": "module:model:Net"}[how]
    net = rg.load(d / "sd.pt", arch)
    X = np.load(d / "points.npy")
    np.testing.assert_allclose(net.forward(X), model(torch.as_tensor(X, dtype=torch.float32)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    flag = ["--arch", arch] if how == "arch" else ["--module", arch[len("module:"):]]
    res = _lc([d / "sd.pt", "--data", d / "points.npy", *flag, "--out", d / "lc.csv"])
    assert res.exit_code == 0, res.output
    lc = rg.local_complexity(net, X, 0.5, method="vertex", n_directions=2)
    np.testing.assert_array_equal(pd.read_csv(d / "lc.csv")["lc"], lc.lc)


def test_a_users_class_that_cannot_be_built_or_found_is_named(user):
    d, _ = user
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(d / "sd.pt", f"module:{d / 'model.py'}:NeedsWidth")
    assert str(info.value).startswith(f"module '{d / 'model.py'}:NeedsWidth' cannot be built without arguments (")
    assert str(info.value).endswith("name a function in the file that takes none and returns the model, e.g. "
                                    "'model.py:make_model'")
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(d / "sd.pt", f"module:{d / 'model.py'}:Nope")
    assert str(info.value) == f"module '{d / 'model.py'}:Nope': '{d / 'model.py'}' has no attribute 'Nope'"
    res = _lc([d / "sd.pt", "--data", d / "points.npy", "--arch", "mlp:4-8-3:relu", "--module", "model.py:Net"])
    assert res.exit_code == 2 and _error(res) == ("pass either --arch or --module, not both; got --arch "
                                                  "'mlp:4-8-3:relu' and --module 'model.py:Net'")


def test_safetensors_files_are_read_as_state_dicts(user):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    d, model = user
    path = d / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path)
    assert str(info.value) == (
        f"checkpoint '{path}': holds a bare state_dict (keys ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']) "
        f"with no architecture. Its Linear layers, in order, have the sizes 4-8-3: for an MLP with one activation "
        f"pass arch='mlp:4-8-3:relu' (or 'mlp:4-8-3:leaky_relu(<slope>)'); otherwise {WORKAROUNDS}")
    X = np.load(d / "points.npy")
    want = model(torch.as_tensor(X, dtype=torch.float32)).detach().numpy()
    for arch in ("mlp:4-8-3:relu", f"module:{d / 'model.py'}:Net"):
        np.testing.assert_allclose(rg.load(path, arch).forward(X), want, rtol=1e-5, atol=1e-6)


def test_safetensors_without_the_package_says_what_to_install(user, monkeypatch):
    d, _ = user
    path = d / "weights.safetensors"
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(rg.CheckpointError) as info:
        rg.load(path)
    assert str(info.value) == (f"checkpoint '{path}' is a safetensors file; reading it needs the safetensors "
                               f"package: pip install safetensors (or pip install 'relugeo[safetensors]')")
