"""An architecture step before every K-th weight step only (train_search.py --arch_every,
search/bilevel.py): which steps move the alphas, and that the others leave them alone."""

import pytest

import architect
from search.bilevel import EpochSettings
from tests.test_search_e2e import search

pytestmark = pytest.mark.timeout(300)


def test_every_kth_step_after_the_warm_up_steps_the_alphas():
    assert [EpochSettings(arch_every=3).steps_alphas(s) for s in range(7)] == [
        True, False, False, True, False, False, True]
    assert all(EpochSettings().steps_alphas(s) for s in range(4))
    assert not any(EpochSettings(warming_up=True, arch_every=2).steps_alphas(s) for s in range(4))


@pytest.mark.parametrize("every, expected", [(1, 4), (2, 2), (3, 2)])
def test_a_search_takes_one_alpha_step_per_k_weight_steps(tmp_path, monkeypatch, every,
                                                           expected):
    calls = []
    step = architect.Architect.step

    def counted(self, *args, **kwargs):
        calls.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(architect.Architect, "step", counted)
    # 64 images: 32 train the weights, 2 steps of 16 per epoch, 4 over 2 epochs
    status, run = search(tmp_path, f"every{every}", "--epochs", "2", "--warmup_epochs", "0",
                         "--arch_every", str(every))
    assert status == 0 and len(calls) == expected
