"""The shared file format of probkit.models' trained networks."""

import json

import equinox as eqx
import jax
import numpy as np
from probkit.models._serialise import load_module, save_module
from probkit.models.mjp import AmortizedMJPNetwork, load_network, save_network


def test_round_trip_keeps_every_leaf_and_the_metadata(tmp_path):
    path = tmp_path / "net.eqx"
    net = AmortizedMJPNetwork(jax.random.key(3), width=8)
    save_network(path, net, steps=12, note="test")
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert header["width"] == 8 and header["metadata"] == {"steps": 12, "note": "test"}
    loaded = load_network(path)
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(loaded, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_load_module_builds_the_skeleton_from_the_header(tmp_path):
    path = tmp_path / "mlp.eqx"
    mlp = eqx.nn.MLP(2, 1, width_size=4, depth=1, key=jax.random.key(0))
    save_module(path, mlp, ("in_size", "width_size", "depth"))
    loaded = load_module(
        path,
        lambda h: eqx.nn.MLP(h["in_size"], 1, h["width_size"], h["depth"], key=jax.random.key(1)),
    )
    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(loaded(x), mlp(x))
