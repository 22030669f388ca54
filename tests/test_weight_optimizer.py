"""The weights' optimiser (runner/weight_optimizers.py, --weight_optimizer of both programs):
per-dataset defaults and learning rates, second order on SGD, the ranking proxy's own SGD
recipe, one-line errors."""

import json

import pytest
import torch

import train
import train_search
from runner.weight_optimizers import default_learning_rate, weight_optimizer
from search.proxy import ProxyRecipe


def test_each_name_builds_its_optimiser_with_the_given_settings():
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = weight_optimizer("sgd", params, 0.1, 0.9, 3e-4)
    adamw = weight_optimizer("adamw", params, 3e-3, 0.9, 3e-4)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9
    assert type(adamw) is torch.optim.AdamW
    assert (adamw.defaults["lr"], adamw.defaults["weight_decay"]) == (3e-3, 3e-4)
    with pytest.raises(ValueError, match="--weight_optimizer 'adam'.*sgd, adamw"):
        weight_optimizer("adam", params, 1e-3, 0.9, 0.0)


def test_a_default_learning_rate_is_one_number_or_one_per_optimiser():
    assert default_learning_rate(0.025, "adamw") == 0.025
    assert default_learning_rate({"sgd": 0.1, "adamw": 3e-3}, "sgd") == 0.1


@pytest.mark.parametrize("argv, expected", [
    ([], ("adamw", 3e-3, 3e-5)),  # shapes
    (["--weight_optimizer", "sgd"], ("sgd", 0.1, 1e-3)),
    (["--weight_optimizer", "sgd", "--learning_rate", "0.05"], ("sgd", 0.05, 1e-3)),
    (["--unrolled"], ("sgd", 0.1, 1e-3)),  # second order trains by SGD unless told otherwise
    (["--dataset", "cifar10"], ("sgd", 0.025, 1e-3)),  # DARTS's
])
def test_the_optimiser_and_its_learning_rates_per_dataset(argv, expected):
    args = train_search.parse_args(argv)
    assert (args.weight_optimizer, args.learning_rate, args.learning_rate_min) == expected


def test_second_order_on_adamw_is_refused_in_one_line():
    with pytest.raises(ValueError, match="--unrolled.*--weight_optimizer sgd"):
        train_search.parse_args(["--unrolled", "--weight_optimizer", "adamw"])


def test_the_search_builds_the_chosen_optimiser():
    _, (_, _, w_optimizer, scheduler, _, _) = train_search.prepare_in_process(
        ["--epochs", "2", "--n_train", "64", "--n_test", "16", "--rank_proxy_epochs", "0"])
    assert type(w_optimizer) is torch.optim.AdamW
    assert w_optimizer.param_groups[0]["lr"] == 3e-3 and scheduler.eta_min == 3e-5


def test_the_ranking_proxy_keeps_its_sgd_learning_rate_under_adamw():
    adamw = train_search.parse_args([])
    sgd = train_search.parse_args(["--weight_optimizer", "sgd", "--learning_rate", "0.05"])
    assert ProxyRecipe.from_settings(adamw, 10).learning_rate == 0.1  # the recipe's own
    assert ProxyRecipe.from_settings(sgd, 10).learning_rate == 0.05


@pytest.mark.parametrize("argv, expected", [
    ([], ("sgd", 0.1)), (["--weight_optimizer", "adamw"], ("adamw", 3e-3)),
    (["--dataset", "cifar10"], ("sgd", 0.025))])
def test_the_retrain_trains_by_sgd_unless_told_otherwise(argv, expected):
    args = train.parse_args(argv)
    assert (args.weight_optimizer, args.learning_rate) == expected


def test_a_run_config_from_before_the_flag_reruns_on_sgd(tmp_path):
    """A run's config.json written before --weight_optimizer holds `learning_rate: 0.1` but no
    optimiser: rerun with --config it keeps SGD (not AdamW at 0.1); a flag given now, or a
    hand-written file of a few settings, takes today's defaults."""
    old_run = tmp_path / "config.json"
    old_run.write_text(json.dumps({"save": "runs/old", "resume": None, "epochs": 2,
                                   "learning_rate": 0.1, "learning_rate_min": 1e-3}))
    args = train_search.parse_args(["--config", str(old_run)])
    assert (args.weight_optimizer, args.learning_rate, args.float_warmup) == ("sgd", 0.1, False)
    args = train_search.parse_args(["--config", str(old_run), "--weight_optimizer", "adamw"])
    assert (args.weight_optimizer, args.learning_rate) == ("adamw", 0.1)
    settings = tmp_path / "mine.yaml"
    settings.write_text("epochs: 2\n")
    args = train_search.parse_args(["--config", str(settings)])
    assert (args.weight_optimizer, args.learning_rate) == ("adamw", 3e-3)
