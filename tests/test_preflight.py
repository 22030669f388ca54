"""Every bad input of a search or retrain fails before the first epoch, with one line naming the
input and the fix, exit status 2, and no run directory created."""

import json

import pytest
from PIL import Image

import genotypes
import train
import train_search

TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--batch_size", "16", "--epochs", "1", "--device", "cpu"]


def fails_with_one_line(capsys, program, tmp_path, *argv, message):
    run = tmp_path / "run"
    status = program([*TINY, "--data", str(tmp_path / "data"), "--save", str(run), *argv])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 0, err
    assert message in err, err
    assert not run.exists()
    return err


def search_fails(capsys, tmp_path, *argv, message):
    return fails_with_one_line(capsys, train_search.main, tmp_path, "--layers", "2", *argv,
                               message=message)


def retrain_fails(capsys, tmp_path, *argv, message):
    return fails_with_one_line(capsys, train.main, tmp_path, "--layers", "3", *argv,
                               message=message)


@pytest.fixture
def unknown_table(tmp_path, evoapprox_dir):
    """A truth table whose content is in no catalogue (one bit flipped): power unknown."""
    raw = bytearray((evoapprox_dir / "luts" / "mul8u_0AB.bin").read_bytes())
    raw[1000] ^= 1
    path = tmp_path / "mystery.bin"
    path.write_bytes(raw)
    return path


def test_search_refuses_zero_epochs(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--epochs", "0", message="--epochs 1 or more")


def test_retrain_refuses_zero_epochs(tmp_path, capsys):
    retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2", "--epochs", "0",
                  message="--epochs 1 or more")


def test_misspelled_stl_signal_fails_before_training(tmp_path, capsys):
    err = retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2",
                        "--stl", "F(test_accuracy >= 0.5)",
                        message="unknown signal 'test_accuracy'")
    assert "did you mean 'test_acc'?" in err


def test_resume_of_a_missing_directory(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--resume", str(tmp_path / "nowhere"),
                 message="no such run directory")


def test_resume_of_a_directory_without_checkpoint(tmp_path, capsys):
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.json").write_text("{}")
    search_fails(capsys, tmp_path, "--resume", str(tmp_path / "early"),
                 message=f"no checkpoint.pt there (the run stopped before its first checkpoint); "
                         f"start it again with --save {tmp_path / 'early'}")


def test_resume_of_a_torn_checkpoint(tmp_path, capsys):
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "config.json").write_text("{}")
    (tmp_path / "torn" / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a file")
    retrain_fails(capsys, tmp_path, "--resume", str(tmp_path / "torn"),
                  message="is not a readable checkpoint")


def test_malformed_genotype_file(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"genotype": {"normal": 3, "normal_concat": [2], "reduce": [],
                                             "reduce_concat": [2]}}))
    retrain_fails(capsys, tmp_path, "--genotype", str(path), message="must be JSON lists")


def test_search_multiplier_without_power(tmp_path, capsys, unknown_table):
    search_fails(capsys, tmp_path, "--multipliers", str(unknown_table),
                 message="has no known power")


def test_genotype_multiplier_without_power(tmp_path, capsys, unknown_table):
    normal = [(f"{op}@{unknown_table}" if "conv" in op else op, i)
              for op, i in genotypes.DARTS_V2.normal]
    genotype = genotypes.DARTS_V2._replace(normal=normal)
    path = genotypes.save(genotype, tmp_path / "g.json")
    retrain_fails(capsys, tmp_path, "--genotype", str(path), message="has no known power")


def test_missing_energy_table(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--energy_table", str(tmp_path / "none.json"),
                 message="no --accelerator (alias --energy_table) for the default")


def test_folder_with_a_file_that_is_not_an_image(tmp_path, capsys):
    root = tmp_path / "images"
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for index in range(8):
                image = Image.new("RGB", (8, 8), (30 * index, 0, 0))
                image.save(root / split / name / f"{index}.png")
    (root / "train" / "b" / "notes.png").write_text("not an image")
    err = search_fails(capsys, tmp_path, "--dataset", "folder", "--data", str(root),
                       "--n_train", "16", "--n_test", "16",
                       message=f"{root / 'train' / 'b' / 'notes.png'} is not a readable image")
    assert "Traceback" not in err

