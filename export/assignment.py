"""The per-layer multiplier assignment of a deployed network (JSON) and the tables it uses.

One record per deployed conv / classifier, in execution order of the module tree: the layer
name (the source network's module path, as the ONNX node's `axdarts.layer` says), its shape
and geometry, its arithmetic (multiplier name, signedness, table sha256 and file, relative
energy per multiplication, or `float32`), its calibrated activation scale, and the MACs and
energy per image that energy_estimator.profile prices for that layer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from approx.binfile import table_to_bytes
from deploy import DeployedConv2d, deployed_layers

TABLE_DIR = "tables"


def layer_record(layer: DeployedConv2d, cost_rows: dict[str, dict]) -> dict:
    g, m = layer.geometry, layer.multiplier
    cost = cost_rows.get(layer.name, {})
    record = {
        "name": layer.name, "kind": layer.kind,
        "weight_shape": list(layer.weight.shape), "stride": list(g.stride),
        "padding": list(g.padding), "dilation": list(g.dilation), "groups": g.groups,
        "relu_input": layer.relu_input, "macs": cost.get("macs"),
        "energy_uj": cost.get("energy_uj"), "mult_energy_uj": cost.get("mult_energy_uj"),
        "multiplier": "float32" if m is None else m.name,
    }
    if m is not None:
        record.update({
            "signed": m.signed, "code_scheme": "int8 symmetric" if m.signed
            else "sign-magnitude 8-bit", "table_sha256": m.sha256,
            "table_file": f"{TABLE_DIR}/{m.name}.bin", "relative_energy": m.relative_energy,
            "activation_scale": float(layer.act_scale),
        })
    return record


def cost_by_layer(cost) -> dict[str, dict]:
    """energy_estimator.profile rows by layer name (a layer called twice: its calls summed)."""
    rows: dict[str, dict] = {}
    for row in cost.to_dict()["layers"]:
        name = row["name"].split("#")[0]
        merged = rows.setdefault(name, {"macs": 0, "energy_uj": 0.0, "mult_energy_uj": 0.0})
        for key in merged:
            merged[key] += row[key]
    return rows


def assignment(net, cost) -> dict:
    """The assignment document: layers, and the totals of the profiled network."""
    rows = cost_by_layer(cost)
    layers = [layer_record(layer, rows) for layer in deployed_layers(net)]
    return {"layers": layers, "macs": cost.macs, "energy_uj": cost.energy_uj,
            "energy_model": "energy_estimator.profile of the trained network (per image)"}


def write_tables(net, directory: Path) -> list[Path]:
    """Each multiplier's table as `<directory>/tables/<name>.bin` (EvoApproxLib layout);
    its sha256 is the one in the assignment and the ONNX metadata."""
    written = {}
    for layer in deployed_layers(net):
        m = layer.multiplier
        if m is None or m.name in written:
            continue
        path = directory / TABLE_DIR / f"{m.name}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = table_to_bytes(m.lut, m.signed)
        assert hashlib.sha256(payload).hexdigest() == m.sha256
        path.write_bytes(payload)
        written[m.name] = path
    return list(written.values())
