"""End-to-end searches on tiny settings: outputs, TensorBoard content, the energy trade-off,
resume equivalence and the NaN stop."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train_search
from genotypes import GENOTYPE_FILE

TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--layers", "2", "--batch_size", "16", "--device", "cpu", "--report_freq", "1"]


def search(tmp_path, name, *extra, data_dir=None):
    run = tmp_path / name
    argv = [*TINY, "--data", str(data_dir or tmp_path / "data"), "--save", str(run), *extra]
    return train_search.main(argv), run


@pytest.mark.parametrize("order", ["first", "second"])
def test_tiny_search_writes_all_outputs(tmp_path, order):
    extra = ["--unrolled"] if order == "second" else []
    status, run = search(tmp_path, order, "--epochs", "2", "--multipliers", "trunc6", *extra)
    assert status == 0
    for name in ("config.json", "log.txt", "history.json", "checkpoint.pt", GENOTYPE_FILE,
                 "cell_normal.png", "cell_reduce.png"):
        assert (run / name).is_file(), name
    record = json.loads((run / GENOTYPE_FILE).read_text())
    assert {"genotype", "energy_uj", "val_acc", "energy_budget_uj", "settings"} <= set(record)
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"train_loss", "val_acc", "expected_energy_uj", "energy_uj", "alphas"} <= set(history[0])


def test_tensorboard_holds_scalars_images_and_text(tmp_path):
    _, run = search(tmp_path, "tb", "--epochs", "1")
    events = EventAccumulator(str(run), size_guidance={"images": 0, "tensors": 0}).Reload()
    tags = events.Tags()
    for tag in ("search/train_loss", "search/val_acc", "energy/expected_energy_uj",
                "energy/energy_uj", "energy/energy_weight", "lr/weights", "step/train_loss"):
        assert tag in tags["scalars"], tag
    assert {"alphas/normal", "alphas/reduce", "genotype/normal", "genotype/reduce"} <= set(
        tags["images"])
    # the multiplier decisions (default factorised space, one table per cell type)
    for cell in ("normal", "reduce"):
        assert {f"multipliers/{cell}", f"multipliers_over_epochs/{cell}"} <= set(tags["images"])
        assert (run / f"multipliers_{cell}.png").is_file()
        assert (run / f"multipliers_over_epochs_{cell}.png").is_file()
    history = json.loads((run / "history.json").read_text())
    assert len(history[0]["multipliers"]["normal"]) == 14 * 2  # edges x conv ops, by row
    assert any("genotype" in tag for tag in tags["tensors"])  # text summaries are tensors


def test_large_energy_weight_finds_a_cheaper_genotype(tmp_path):
    common = ["--epochs", "2", "--multipliers", "exact", "--arch_learning_rate", "0.05"]
    energies = {}
    for weight in ("0", "20"):
        status, run = search(tmp_path, f"w{weight}", *common, "--energy_weight", weight,
                             data_dir=tmp_path / "data")
        assert status == 0
        energies[weight] = json.loads((run / GENOTYPE_FILE).read_text())["energy_uj"]
    assert energies["20"] < energies["0"]


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    # no warm-up: a warm-up given as a share of --epochs changes when --epochs is extended
    _, full = search(tmp_path, "full", "--epochs", "2", "--warmup_epochs", "0")
    _, part = search(tmp_path, "part", "--epochs", "1", "--warmup_epochs", "0")
    status = train_search.main(["--resume", str(part), "--epochs", "2"])
    assert status == 0
    full_state = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    part_state = torch.load(part / "checkpoint.pt", weights_only=True)["model"]
    for key, value in full_state.items():
        assert torch.equal(value, part_state[key]), key
    assert (json.loads((full / GENOTYPE_FILE).read_text())["genotype"]
            == json.loads((part / GENOTYPE_FILE).read_text())["genotype"])


def test_resume_keeps_the_runs_own_epochs_unless_given(tmp_path):
    _, run = search(tmp_path, "short", "--epochs", "3", "--warmup_epochs", "0")
    history = json.loads((run / "history.json").read_text())
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert len(history) == 3 and state["epoch"] == 3
    assert train_search.main(["--resume", str(run)]) == 0  # not the parser's default 50
    assert len(json.loads((run / "history.json").read_text())) == 3
    assert train_search.main(["--resume", str(run), "--epochs", "4"]) == 0
    assert len(json.loads((run / "history.json").read_text())) == 4


def test_nan_loss_stops_cleanly_and_keeps_the_checkpoint(tmp_path, capsys):
    status, run = search(tmp_path, "nan", "--epochs", "1", "--learning_rate", "1e30",
                         "--grad_clip", "1e30")
    assert status == 3
    assert "is nan" in capsys.readouterr().err or "is inf" in capsys.readouterr().err
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 0


@pytest.mark.parametrize("flag, value, message", [
    ("--multipliers", "no_such_mult", "no_such_mult"),
    ("--primitives", "conv_9x9", "unknown op 'conv_9x9'"),
    ("--dataset", "cifar10", "--download"),
    ("--approx_rank", "-3", "rank cap -3"),
    ("--approx_rank", "fast", "--approx_rank 'fast': give 'auto'"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, capsys, flag, value, message):
    status, run = search(tmp_path, "bad", "--epochs", "1", flag, value)
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not run.exists()


@pytest.mark.parametrize("partial_channels", ["2", "4"])
def test_partial_channel_search_runs(tmp_path, partial_channels):
    status, run = search(tmp_path, "pc", "--epochs", "1", "--partial_channels", partial_channels,
                         "--multipliers", "")
    assert status == 0 and (run / GENOTYPE_FILE).is_file()
