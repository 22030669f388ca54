"""Issue 25: the inputs of the newer features (config files, warm-up, image size, resume,
`--genotype best`, backbone and energy flags) fail before the first epoch with one line naming
the input and the fix, exit status 2, no run directory created and no existing one touched."""

import json

import pytest
import torch

import genotypes
import preflight
import train
import train_search
from backbones import cli as backbone_cli
from operations import OperationError
from runner import config_file, resume
from runner.errors import GenotypeError
from search import runs
from tests.test_preflight import TINY, fails_with_one_line, retrain_fails, search_fails

SEARCH_CONFIG = {"layers": 2, "epochs": 2, "dataset": "shapes", "candidates": ["sep_conv_3x3"]}
TRAIN_CONFIG = {"layers": 3, "epochs": 2, "dataset": "shapes",
                "genotype": genotypes.to_dict(genotypes.DARTS_V2)}


def write_config(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def finished_run(tmp_path, name, config):
    """A run directory as a finished run leaves it: config.json and a (zip) checkpoint."""
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    torch.save({"epoch": config["epochs"]}, run / "checkpoint.pt")
    return run, {path.name: path.read_bytes() for path in run.iterdir()}


def untouched(run, contents):
    return {path.name: path.read_bytes() for path in run.iterdir()} == contents


# --- config files ----------------------------------------------------------------------------
def test_unparsable_yaml_names_file_line_and_fix(tmp_path, capsys):
    bad = write_config(tmp_path, "bad.yaml", "epochs: [unclosed\n")
    err = search_fails(capsys, tmp_path, "--config", str(bad), message=f"--config {bad}: not "
                       "valid YAML (expected ',' or ']', but got '<stream end>' at line 2")
    assert "closing ']'" in err


def test_unparsable_json_is_one_line(tmp_path, capsys):
    bad = write_config(tmp_path, "bad.json", '{"epochs": 3,}')
    search_fails(capsys, tmp_path, "--config", str(bad), message="not valid JSON")


def test_config_value_of_the_wrong_type(tmp_path, capsys):
    path = write_config(tmp_path, "c.json", '{"epochs": "many"}')
    search_fails(capsys, tmp_path, "--config", str(path),
                 message=f"--config {path}: epochs 'many': invalid int value: 'many'; write a "
                         f"value that --epochs accepts (see --help)")


@pytest.mark.parametrize("settings, message", [
    ({"energy_loss": "square"}, "energy_loss 'square': invalid choice: 'square'"),
    ({"unrolled": "yes"}, "unrolled 'yes': --unrolled is on or off; write true or false"),
    ({"multipliers": ["exact", "drum6"]}, "--multipliers takes one value"),
    ({"energy_weight": True}, "energy_weight True: invalid float value: 'True'"),
    ({"space": "vgg"}, "space 'vgg': invalid choice"),
])
def test_config_values_are_checked_as_the_command_line_checks_them(tmp_path, settings, message):
    path = write_config(tmp_path, "c.json", json.dumps(settings))
    with pytest.raises(config_file.ConfigFileError, match=message.replace("(", r"\(")):
        train_search.parse_args(["--config", str(path)])


def test_config_values_convert_as_on_the_command_line(tmp_path):
    path = write_config(tmp_path, "c.yaml", "epochs: '3'\nenergy_weight: 1\nunrolled: true\n"
                                            "multipliers: exact,drum6\nwarmup_epochs: 1\n")
    from_file = train_search.parse_args(["--config", str(path)])
    given = train_search.parse_args(["--epochs", "3", "--energy_weight", "1", "--unrolled",
                                     "--multipliers", "exact,drum6", "--warmup_epochs", "1"])
    keys = ("epochs", "energy_weight", "unrolled", "multipliers", "warmup_epochs")
    assert [getattr(from_file, key) for key in keys] == [getattr(given, key) for key in keys]
    assert from_file.epochs == 3 and isinstance(from_file.energy_weight, float)


def test_a_runs_config_json_with_its_genotype_is_still_accepted(tmp_path):
    path = write_config(tmp_path, "config.json", json.dumps({**TRAIN_CONFIG, "save": "x"}))
    assert train.parse_args(["--config", str(path)]).genotype == TRAIN_CONFIG["genotype"]


# --- warm-up and image size --------------------------------------------------------------------
def test_warmup_must_leave_an_architecture_epoch(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--epochs", "2", "--warmup_epochs", "5",
                 message="--warmup_epochs 5: 5 warm-up epoch(s) of --epochs 2 leave no epoch "
                         "that trains the architecture; pass --warmup_epochs 1 or less, or more "
                         "--epochs")
    search_fails(capsys, tmp_path, "--epochs", "2", "--warmup_epochs", "100%",
                 message="--warmup_epochs 100%: 2 warm-up epoch(s)")


def test_smallest_image_size_follows_the_reductions():
    assert [preflight.smallest_image_size(layers) for layers in (1, 2, 3, 8, 20)] == [2, 4, 4, 4, 4]


def test_search_image_size_too_small(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--image_size", "2",
                 message="--image_size 2: the 2 reduction cell(s) of --layers 2 halve the image "
                         "2 time(s), so its side must be a multiple of 4 (the smallest workable "
                         "is 4); pass --image_size 4")


def test_search_image_size_not_halvable_and_energy_image_size(tmp_path, capsys):
    search_fails(capsys, tmp_path, "--image_size", "10", message="pass --image_size 8")
    search_fails(capsys, tmp_path, "--energy_image_size", "6", "--energy_layers", "3",
                 message="--energy_image_size 6: the 2 reduction cell(s) of --energy_layers 3")


def test_retrain_image_size_too_small(tmp_path, capsys):
    retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2", "--image_size", "2",
                  message="--image_size 2: the 2 reduction cell(s) of --layers 3")


# --- resume ------------------------------------------------------------------------------------
def test_resume_refuses_a_flag_that_changes_the_run(tmp_path, capsys):
    run, contents = finished_run(tmp_path, "search", SEARCH_CONFIG)
    err = fails_with_one_line(capsys, train_search.main, tmp_path, "--resume", str(run),
                              "--layers", "3", message=f"--resume {run}: --layers 3 (the run's: 2) "
                              "would change what the run computes; drop it to continue the run")
    assert "--epochs" in err and untouched(run, contents)


def test_resume_refuses_a_changed_setting_of_a_config_file(tmp_path, capsys):
    run, contents = finished_run(tmp_path, "search", SEARCH_CONFIG)
    path = write_config(tmp_path, "more.yaml", "epochs: 4\nlayers: 3\n")
    fails_with_one_line(capsys, train_search.main, tmp_path, "--resume", str(run), "--config",
                        str(path), message="--layers 3 (the run's: 2) would change")
    assert untouched(run, contents)


def test_retrain_resume_refuses_another_genotype(tmp_path, capsys):
    run, contents = finished_run(tmp_path, "train", {**TRAIN_CONFIG,
                                                     "genotype_source": "DARTS_V2"})
    fails_with_one_line(capsys, train.main, tmp_path, "--resume", str(run), "--genotype",
                        "DARTS_V1", message=f"--resume {run}: --genotype DARTS_V1 is not the "
                                            f"run's genotype (from DARTS_V2); drop --genotype")
    assert untouched(run, contents)
    args = train.parse_args(["--resume", str(run), "--genotype", "DARTS_V2"])
    train.check_resumed_genotype(args, "DARTS_V2", TRAIN_CONFIG)  # its own: accepted


def test_resume_of_a_run_from_before_a_flag_keeps_what_it_computed(tmp_path):
    import experiment
    old, _ = finished_run(tmp_path, "old", SEARCH_CONFIG)  # saved before --crop_padding
    new, _ = finished_run(tmp_path, "new", {**SEARCH_CONFIG, "crop_padding": None,
                                            "float_warmup": True})
    args = train_search.parse_args(["--resume", str(old)])
    experiment.restore_saved_config(args, "train_search.py")
    assert args.crop_padding == 4  # the fixed padding of the old BatchLoader
    assert args.float_warmup is False  # its warm-up was emulated
    args = train_search.parse_args(["--resume", str(new)])
    experiment.restore_saved_config(args, "train_search.py")
    assert args.crop_padding is None  # an eighth of the image side
    assert args.float_warmup is True


def test_resume_takes_the_flags_that_may_change():
    resume.check_unchanged("run", SEARCH_CONFIG, {"layers": 2, "epochs": 9, "device": "cpu"},
                           given=("layers", "epochs", "device"))


def test_help_lists_the_flags_that_may_change_on_resume(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "only --epochs, --device, --dist_timeout" in help_text


def test_retrain_resume_of_a_search_directory(tmp_path, capsys):
    run, contents = finished_run(tmp_path, "search", SEARCH_CONFIG)
    fails_with_one_line(capsys, train.main, tmp_path, "--resume", str(run),
                        message=f"--resume {run}: this run directory belongs to train_search.py, "
                                f"not train.py; continue it with `python train_search.py --resume "
                                f"{run}`, or retrain its genotype with `python train.py --genotype "
                                f"{run}`")
    assert untouched(run, contents)


def test_search_resume_of_a_retrain_directory(tmp_path, capsys):
    run, contents = finished_run(tmp_path, "train", TRAIN_CONFIG)
    fails_with_one_line(capsys, train_search.main, tmp_path, "--resume", str(run),
                        message="this run directory belongs to train.py, not train_search.py")
    assert untouched(run, contents)


# --- --genotype best -------------------------------------------------------------------------
def test_best_names_each_run_it_skipped(tmp_path):
    good, damaged, unfinished = (tmp_path / name for name in ("a", "b", "c"))
    for run in (good, damaged, unfinished):
        run.mkdir()
    genotypes.save(genotypes.DARTS_V2, good / "genotype.json", val_acc=0.5)
    (damaged / "genotype.json").write_text('{"genotype": {"normal": ')
    (unfinished / "config.json").write_text(json.dumps(SEARCH_CONFIG))
    run, _, reason = runs.choose_best(tmp_path)
    assert run == good and "(2 other run(s) skipped, listed below)" in reason
    assert f"skipped {damaged}: damaged genotype.json (cannot read genotype file" in reason
    assert f"skipped {unfinished}: no genotype.json yet (the search has not finished" in reason


def test_best_ranks_by_the_proxy_then_the_one_shot_score(tmp_path):
    for name, scores in (("oneshot", {"derived_acc": 0.9}), ("proxy_low", {"proxy_acc": 0.3}),
                         ("proxy_high", {"proxy_acc": 0.4, "derived_acc": 0.1})):
        (tmp_path / name).mkdir()
        genotypes.save(genotypes.DARTS_V2, tmp_path / name / "genotype.json", **scores)
    run, _, reason = runs.choose_best(tmp_path)
    assert run == tmp_path / "proxy_high" and "proxy acc 0.3 (recipe not recorded)" in reason
    assert "note:" not in reason  # one (unrecorded) recipe throughout
    # each search lists the scores it has
    assert f"{tmp_path / 'oneshot'}: derived acc 0.9, val acc" in reason
    assert f"{tmp_path / 'proxy_low'}: proxy acc 0.3 (recipe not recorded), val acc" in reason


def test_best_says_when_proxy_scores_come_from_different_recipes(tmp_path):
    for name, recipe in (("old", {"epochs": 10, "batch_size": 128}),
                         ("new", {"epochs": 10, "batch_size": 32})):
        (tmp_path / name).mkdir()
        genotypes.save(genotypes.DARTS_V2, tmp_path / name / "genotype.json", proxy_acc=0.4,
                       proxy=recipe)
    _, _, reason = runs.choose_best(tmp_path)
    assert "proxy acc 0.4 (10 epochs at batch 32)" in reason
    assert ("note: the proxy scores compared come from 2 recipes (10 epochs at batch 128; "
            "10 epochs at batch 32)") in reason and "--rank_proxy_batch_size" in reason


def test_best_with_only_damaged_searches_names_them(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "genotype.json").write_text("{")
    with pytest.raises(GenotypeError, match="skipped .*b: damaged genotype.json"):
        runs.choose_best(tmp_path)


# --- flags added since the first release -------------------------------------------------------
def test_backbone_choices_name_their_flag():
    with pytest.raises(OperationError, match="--resnet_blocks '1,x': give comma-separated"):
        backbone_cli.integers("--resnet_blocks", "1,x")


@pytest.mark.parametrize("argv, message", [
    (["--energy_weight", "-1"], "--energy_weight -1.0: a negative weight would reward energy"),
    (["--energy_layers", "0"], "--energy_layers 0: a network needs at least one"),
    (["--energy_channels", "0"], "--energy_channels 0: a network needs at least one"),
    (["--layers", "0"], "--layers 0: a network needs at least one"),
    (["--arch_every", "0"], "--arch_every 0: 1 steps the alphas before every weight step"),
    (["--crop_padding", "-2"], "--crop_padding -2: 0 crops nothing"),
    (["--rank_proxy_epochs", "-1"], "--rank_proxy_epochs -1"),
    (["--rank_proxy_batch_size", "0"], "--rank_proxy_batch_size 0"),
    (["--space", "resnet", "--resnet_stages", "a"], "--resnet_stages 'a': give comma-separated"),
])
def test_search_numbers_checked_before_the_run(tmp_path, capsys, argv, message):
    fails_with_one_line(capsys, train_search.main, tmp_path, *argv, message=message)


def test_retrain_crop_padding_checked(tmp_path, capsys):
    retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2", "--crop_padding", "-1",
                  message="--crop_padding -1: 0 crops nothing")


def test_drop_path_probability_checked(tmp_path, capsys):
    retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2", "--drop_path_prob", "2",
                  message="--drop_path_prob 2.0: a probability of dropping a path must be in")


@pytest.mark.parametrize(("value", "message"), [
    ("4", "--float_warmup_epochs 4: 4 float32 epochs exceed --epochs 3; pass "
          "--float_warmup_epochs 3 or less"),
    ("some", "--float_warmup_epochs 'some': give a number of epochs or a share of --epochs "
             "such as '33%'"),
    ("-1", "--float_warmup_epochs '-1' must not be negative"),
])
def test_retrain_float_warm_up_checked(tmp_path, capsys, value, message):
    retrain_fails(capsys, tmp_path, "--genotype", "DARTS_V2", "--epochs", "3",
                  "--float_warmup_epochs", value, message=message)


def test_tiny_settings_still_pass_the_checks():
    args = train_search.parse_args([*TINY, "--layers", "2"])
    preflight.check_search_args(args, train_search.warmup_epochs(args.warmup_epochs, args.epochs))
