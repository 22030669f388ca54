"""The short training proxy (search/proxy.py): the search's split, a seeded score that leaves
the caller's RNG alone, and a recipe read from a search's settings."""

import argparse

import pytest
import torch

import data
from genotypes import DARTS_V2
from search.proxy import ProxyData, ProxyRecipe, proxy_accuracy

RECIPE = ProxyRecipe(epochs=1, batch_size=8, init_channels=4, layers=2)


@pytest.fixture(scope="module")
def proxy_data(tmp_path_factory):
    dataset = data.load_dataset("shapes", root=tmp_path_factory.mktemp("data"), n_train=32,
                                n_test=8, image_size=8)
    return ProxyData.of_search(dataset, 0.5, 0, val_images=12)


def test_the_split_is_the_searchs(proxy_data):
    assert len(proxy_data.train) == 16 and len(proxy_data.val) == 12


def test_a_genotype_always_gets_the_same_score_and_the_rng_is_left_alone(proxy_data):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = proxy_accuracy(DARTS_V2, proxy_data, RECIPE)
    assert torch.equal(torch.get_rng_state(), before)
    assert proxy_accuracy(DARTS_V2, proxy_data, RECIPE) == first
    assert 0.0 <= first <= 1.0


def test_recipe_from_a_searchs_settings():
    settings = argparse.Namespace(batch_size=32, learning_rate=0.05, momentum=0.8,
                                  weight_decay=0.0, grad_clip=1.0, init_channels=6, layers=3,
                                  seed=7, epochs=50)
    recipe = ProxyRecipe.from_settings(settings, epochs=2)
    assert (recipe.epochs, recipe.batch_size, recipe.init_channels, recipe.seed) == (2, 32, 6, 7)
    with pytest.raises(ValueError, match="--proxy_epochs"):
        ProxyRecipe.from_settings(settings, epochs=0)
