"""Modular arithmetic and sparse parity: the tables are complete, one-hot, correctly labelled and split by seed."""

import numpy as np
import pytest

import relugeo as rg
from relugeo.data import modular, sparse_parity

REFERENCE = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    # the c with c * b = a (mod p), found by search rather than by an inverse
    "div": lambda a, b, p: next(c for c in range(p) if (c * b) % p == a),
}


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("p,fraction", [(7, 0.3), (11, 0.5), (13, 0.8)])
def test_every_pair_once_one_hot_and_correctly_labelled(op, p, fraction):
    X, y, Xt, yt = modular(p, op, fraction, seed=3)
    n = p * p - (p if op == "div" else 0)
    assert X.dtype == Xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert X.shape == (round(fraction * n), 2 * p) and Xt.shape == (n - len(X), 2 * p)
    A = np.concatenate([X, Xt])
    labels = np.concatenate([y, yt])
    assert set(np.unique(A)) == {0.0, 1.0}
    assert (A[:, :p].sum(axis=1) == 1).all() and (A[:, p:].sum(axis=1) == 1).all()
    a, b = A[:, :p].argmax(axis=1), A[:, p:].argmax(axis=1)
    pairs = {(int(i), int(j)) for i, j in zip(a, b)}
    expected = {(i, j) for i in range(p) for j in range(p) if op != "div" or j != 0}
    assert len(pairs) == len(A) and pairs == expected
    assert all(int(c) == REFERENCE[op](int(i), int(j), p) for i, j, c in zip(a, b, labels))


def test_split_is_deterministic_by_seed():
    first = modular(23, "add", 0.4, seed=0)
    again = modular(23, "add", 0.4, seed=0)
    other = modular(23, "add", 0.4, seed=1)
    for u, v in zip(first, again):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(first[0], other[0])
    assert rg.data.modular is modular


@pytest.mark.parametrize(
    "args,match",
    [
        (dict(p=1), "p must be an integer >= 2"),
        (dict(p=7.0), "p must be an integer"),
        (dict(p=7, op="pow"), "op must be one of"),
        (dict(p=9, op="div"), "prime p"),
        (dict(p=7, train_fraction=0.0), "train_fraction"),
        (dict(p=7, train_fraction=1.0), "train_fraction"),
        (dict(p=3, train_fraction=0.01), "empty train or test"),
    ],
)
def test_modular_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        modular(**args)


def test_sparse_parity_labels_are_the_parity_of_the_support():
    X, y, Xt, yt, support = sparse_parity(12, 3, 200, 100, seed=5)
    assert X.shape == (200, 12) and Xt.shape == (100, 12) and support.shape == (3,)
    assert set(np.unique(X)) == {-1.0, 1.0}
    for A, labels in ((X, y), (Xt, yt)):
        odd = [sum(1 for i in support if row[i] < 0) % 2 for row in A]
        np.testing.assert_array_equal(labels, odd)
    assert 0.3 < y.mean() < 0.7
    again = sparse_parity(12, 3, 200, 100, seed=5)
    np.testing.assert_array_equal(again[0], X)
    fixed = sparse_parity(12, 2, 10, 10, support=[7, 1])
    np.testing.assert_array_equal(fixed[4], [1, 7])


@pytest.mark.parametrize(
    "args,match",
    [
        (dict(n_bits=0, k=1), "n_bits"),
        (dict(n_bits=4, k=5), "k must be"),
        (dict(n_bits=4, k=2, n_train=0), "n_train"),
        (dict(n_bits=4, k=2, support=[1, 1]), "support"),
        (dict(n_bits=4, k=2, support=[1, 4]), "support"),
    ],
)
def test_sparse_parity_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sparse_parity(**args)


def test_full_batch_fit_is_plain_adamw_and_record_steps_write_no_files(tmp_path):
    import torch
    from torch import nn

    from relugeo import train
    from relugeo.nets import build_module

    X, y, Xt, yt = modular(5, "add", 0.6, seed=0)
    torch.manual_seed(0)
    model = build_module("mlp:10-8-5:relu")
    torch.manual_seed(0)
    ref = build_module("mlp:10-8-5:relu")
    hist = train.fit(model, X, y, steps=6, lr=0.01, weight_decay=1.0, batch_size=None, loss="ce",
                     checkpoint_steps=[0, 6], record_steps=[2, 3, 6], out_dir=tmp_path, eval_data=(Xt, yt))
    opt = torch.optim.AdamW(ref.parameters(), lr=0.01, weight_decay=1.0)
    for _ in range(6):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(torch.as_tensor(X)), torch.as_tensor(y)).backward()
        opt.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["step"] for h in hist] == [0, 2, 3, 6]
    assert [h["path"] is None for h in hist] == [False, True, True, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000000.pt", "step_0000006.pt"]
    assert all("test_accuracy" in h for h in hist)
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        train.fit(model, X, y, steps=1, batch_size=0)
