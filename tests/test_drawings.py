"""The search's epoch pictures (reporting/drawings.py): one render gives the PNG file and the
TensorBoard image alike, and FigureCache redraws a picture only when what it shows changed."""

import matplotlib.pyplot as plt
import numpy as np

import genotypes
from reporting import drawings

CANDIDATES = ["exact", "drum4", "bam4_4"]


def heatmap(weights):
    def draw():
        draw.calls += 1
        return drawings.alpha_heatmap(weights, CANDIDATES, "probabilities", ["a", "b"])
    draw.calls = 0
    return draw


def test_the_saved_file_and_the_image_array_are_the_same_picture(tmp_path):
    path = tmp_path / "heatmap.png"
    image = drawings.saved_figure(heatmap(np.eye(2, 3))(), path)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert np.array_equal(image, (plt.imread(path)[..., :3] * 255).astype(np.uint8))


def test_the_cache_redraws_only_when_its_key_changes_or_its_file_is_gone(tmp_path):
    cache, path = drawings.FigureCache(), tmp_path / "multipliers.png"
    weights = np.full((2, 3), 1 / 3)
    draw = heatmap(weights)
    first = cache.image("multipliers", weights, draw, path)
    again = cache.image("multipliers", weights.copy(), draw, path)
    assert draw.calls == 1 and again is first and path.is_file()
    moved = np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    cache.image("multipliers", moved, heatmap(moved), path)
    path.unlink()
    redrawn = heatmap(moved)
    cache.image("multipliers", moved, redrawn, path)
    assert redrawn.calls == 1 and path.is_file()
    other = heatmap(weights)
    cache.image("alphas", weights, other)  # another name keeps its own last picture
    assert other.calls == 1


def test_genotype_cells_are_drawn_again_only_when_they_change(tmp_path, monkeypatch):
    calls = []
    draw_cell = drawings.draw_cell
    monkeypatch.setattr(drawings, "draw_cell", lambda *a: calls.append(a[2]) or draw_cell(*a))
    cache = drawings.FigureCache()
    images = drawings.save_genotype_figures(genotypes.DARTS_V2, tmp_path, cache)
    drawings.save_genotype_figures(genotypes.DARTS_V2, tmp_path, cache)
    assert calls == ["normal cell", "reduce cell"] and set(images) == {"normal", "reduce"}
    darts = genotypes.DARTS_V2
    changed = darts._replace(normal=[("skip_connect", 0), *darts.normal[1:]])
    drawings.save_genotype_figures(changed, tmp_path, cache)
    assert calls == ["normal cell", "reduce cell", "normal cell"]
    assert (tmp_path / "cell_normal.png").is_file() and (tmp_path / "cell_reduce.png").is_file()
