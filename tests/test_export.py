"""The ONNX export (export/): the independent check against ONNX Runtime, the node metadata,
the assignment and tables of `python -m export RUN_DIR`, and its one-line errors."""

import json

import numpy as np
import pytest
import torch

import data
import deploy
import genotypes
from approx import load_multiplier
from approx.multiplier import Multiplier, exact_products
from export import check, deps
from export.__main__ import main as export_main
from export.graph import to_onnx

pytestmark = pytest.mark.timeout(300)
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

@pytest.fixture(scope="module")
def small(deployable_net):
    """The tiny network of conftest and the embedded dataset at its image size."""
    return deployable_net, data.load_dataset("shapes", n_train=256, n_test=1000, image_size=12)


def test_onnxruntime_agrees_with_the_exact_int8_emulation(small):
    model, dataset = small
    net = deploy.build(model, deploy.calibration_loader(dataset), check.signed_exact())
    test = data.BatchLoader(dataset.test, 250, mean=dataset.mean, std=dataset.std, train=False)
    result = check.agreement(net, to_onnx(net, (3, 12, 12), {}), test)
    assert result["images"] == 1000
    assert result["same_class_fraction"] >= check.SAME_CLASS_REQUIRED
    assert result["max_rel_logit_diff"] <= check.LOGIT_TOLERANCE_REL
    assert result["passed"]


def test_sign_magnitude_layers_export_as_int16_codes(small):
    model, dataset = small
    unsigned_exact = Multiplier("exact_u8", False, torch.from_numpy(exact_products(False)))
    net = deploy.build(model, deploy.calibration_loader(dataset, count=64), unsigned_exact)
    proto = to_onnx(net, (3, 12, 12), {})
    codes = [t for t in proto.graph.initializer if t.name.startswith("w_codes")]
    assert codes and all(t.data_type == onnx.TensorProto.INT16 for t in codes)
    images = torch.randn(8, 3, 12, 12)
    runtime = check.runtime_session(proto).run(None, {"images": images.numpy()})[0]
    emulated = net(images).numpy()
    assert np.abs(runtime - emulated).max() <= check.LOGIT_TOLERANCE_REL * np.abs(emulated).max()


def test_every_conv_node_carries_its_multiplier(small):
    model, dataset = small
    net = deploy.build(model, deploy.calibration_loader(dataset, count=64))
    proto = to_onnx(net, (3, 12, 12), {"axdarts.note": "test"})
    layers = [n for n in proto.graph.node if n.op_type in ("Conv", "Gemm")]
    assert len(layers) == len(deploy.deployed_layers(net))
    metadata = [{e.key: e.value for e in n.metadata_props} for n in layers]
    trunc6 = [m for m in metadata if m["axdarts.multiplier"] == "trunc6"]
    assert trunc6 and all(m["axdarts.multiplier_sha256"] == load_multiplier("trunc6").sha256
                          for m in trunc6)
    assert {"float32", "trunc6"} == {m["axdarts.multiplier"] for m in metadata}
    assert {n.op_type for n in proto.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}


def test_int8_fixed_layers_and_classifier_export(small, approx_darts_v2):
    """The default genotype kind: stem, preprocess and the classifier (a 1x1 conv,
    operations.ConvClassifier) on the exact 8-bit multiplier deploy and export, and ONNX
    Runtime agrees with the emulation."""
    from model import NetworkCIFAR

    _, dataset = small
    torch.manual_seed(0)
    model = NetworkCIFAR(4, 10, 3, False, approx_darts_v2._replace(fixed="exact"),
                         channels_last=False).eval()
    net = deploy.build(model, deploy.calibration_loader(dataset, count=64))
    assert isinstance(net.classifier, deploy.DeployedLinear)
    assert net.classifier.conv.multiplier.name == "exact"
    test = data.BatchLoader(dataset.test, 250, mean=dataset.mean, std=dataset.std, train=False)
    signed = deploy.build(model, deploy.calibration_loader(dataset, count=64), check.signed_exact())
    assert check.agreement(signed, to_onnx(signed, (3, 12, 12), {}), test)["passed"]


def test_a_missing_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(deps.importlib, "import_module", missing)
    with pytest.raises(deps.ExportError, match="pip install -r requirements-export.txt"):
        deps.require("onnx")


def test_a_directory_that_is_not_a_run_exits_2_with_one_line(tmp_path, capsys):
    assert export_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "retrain run directory" in err


@pytest.mark.slow
def test_export_of_a_tiny_retrain(tmp_path, approx_darts_v2):
    import train

    genotype = genotypes.save(approx_darts_v2, tmp_path / "g.json")
    run = tmp_path / "run"
    assert train.main(["--dataset", "shapes", "--n_train", "64", "--n_test", "32",
                       "--init_channels", "4", "--layers", "3", "--batch_size", "16",
                       "--device", "cpu", "--data", str(tmp_path / "data"), "--save", str(run),
                       "--genotype", str(genotype), "--epochs", "1"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert 0 <= results["test_acc_deployed_int8"] <= 1 and "test_acc_float32" in results
    assert export_main([str(run), "--check"]) == 0
    out = run / "export"
    assignment = json.loads((out / "assignment.json").read_text())
    approximate = [r for r in assignment["layers"] if r["multiplier"] == "trunc6"]
    assert approximate and all(r["macs"] > 0 and r["energy_uj"] > 0 for r in approximate)
    assert (out / "tables" / "trunc6.bin").read_bytes()
    assert json.loads((out / "check.json").read_text())["passed"]
    assert onnx.load(out / "model.onnx").graph.node
