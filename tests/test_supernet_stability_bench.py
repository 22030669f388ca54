"""bench/supernet_stability.py's variants: each becomes the train_search.py flags it names, and
a bad one fails in one line before any run."""

import pytest

import train_search
from tests.bench_loader import bench_module

supernet_stability = bench_module("supernet_stability")


@pytest.mark.parametrize("variant, flags", [
    ("base", []), ("batch=64", ["--batch_size", "64"]), ("n_train=6400", ["--n_train", "6400"]),
    ("float_warmup=0", ["--no-float_warmup"]), ("float_warmup=1", ["--float_warmup"]),
    ("multipliers=float", ["--multipliers", ""]), ("lr=0.03", ["--learning_rate", "0.03"]),
    ("weight_optimizer=sgd", ["--weight_optimizer", "sgd"])])
def test_a_variant_is_the_flags_it_names(variant, flags):
    assert supernet_stability.variant_flags(variant) == flags
    train_search.parse_args(["--epochs", "50", *flags])  # flags the search accepts


@pytest.mark.parametrize("variant", ["batch", "depth=3", "float_warmup=2", ""])
def test_a_bad_variant_fails_in_one_line(variant):
    with pytest.raises(ValueError, match="--variants"):
        supernet_stability.variant_flags(variant)
