"""Built-in multiplier tables against independent bit-level references, and their metadata."""

import random

import pytest

from approx import MultiplierError, builtin_names, load_multiplier

SAMPLE = [(a, b) for a in (0, 1, 2, 3, 127, 128, 255) for b in (0, 1, 3, 200, 255)]
SAMPLE += [(random.Random(i).randrange(256), random.Random(-i).randrange(256)) for i in range(300)]


def bit(value: int, i: int) -> int:
    return (value >> i) & 1


def array_reference(a: int, b: int, keep) -> int:
    return sum(bit(a, i) * bit(b, j) << (i + j) for i in range(8) for j in range(8) if keep(i, j))


def drum_reference(value: int, k: int) -> int:
    if value < (1 << k):
        return value
    lead = value.bit_length() - 1
    shift = lead - k + 1
    return (((value >> shift) | 1) << shift)


def mitchell_reference(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    ka, kb = a.bit_length() - 1, b.bit_length() - 1
    fraction = (a - (1 << ka)) / (1 << ka) + (b - (1 << kb)) / (1 << kb)
    if fraction < 1:
        return round((1 << (ka + kb)) * (1 + fraction))
    return round((1 << (ka + kb + 1)) * fraction)


def kulkarni_reference(a: int, b: int, bits: int = 8) -> int:
    if bits == 2:
        return 7 if a == 3 and b == 3 else a * b
    h = bits // 2
    lo = (1 << h) - 1
    parts = [(a >> h, b >> h, 2 * h), (a >> h, b & lo, h), (a & lo, b >> h, h), (a & lo, b & lo, 0)]
    return sum(kulkarni_reference(x, y, h) << shift for x, y, shift in parts)


REFERENCES = {
    "exact": lambda a, b: a * b,
    "mitchell": mitchell_reference,
    "kulkarni": kulkarni_reference,
}
REFERENCES.update({f"trunc{k}": (lambda a, b, k=k: array_reference(a, b, lambda i, j: i + j >= k))
                   for k in range(1, 15)})
REFERENCES.update({f"bam{h}_{v}": (lambda a, b, h=h, v=v: array_reference(
    a, b, lambda i, j: j >= h and i + j >= v)) for h in (0, 2, 4) for v in (0, 4, 8)})
REFERENCES.update({f"drum{k}": (lambda a, b, k=k: drum_reference(a, k) * drum_reference(b, k))
                   for k in range(3, 8)})


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_table_matches_bit_level_reference(name):
    lut = load_multiplier(name).lut
    reference = REFERENCES[name]
    for a, b in SAMPLE:
        assert int(lut[a, b]) == reference(a, b), (name, a, b)


def test_kulkarni_full_table_and_published_error():
    m = load_multiplier("kulkarni")
    assert all(int(m.lut[a, b]) == kulkarni_reference(a, b) for a in range(0, 256, 3)
               for b in range(256))
    assert m.mre_pct == pytest.approx(3.28, abs=0.01)  # Kulkarni et al. report up to 3.32 %


def test_builtin_names_are_valid_and_costed():
    for name in builtin_names():
        m = load_multiplier(name)
        assert "@" not in m.name and "," not in m.name and m.signed == (name == "exact_s")
        assert 0 < m.relative_energy <= 1.05 and m.energy_basis
    assert load_multiplier("exact").is_exact and load_multiplier("exact_s").is_exact
    assert load_multiplier("trunc8").relative_energy == 28 / 64


def test_bam_zero_rows_is_truncation():
    assert (load_multiplier("bam0_6").lut == load_multiplier("trunc6").lut).all()


@pytest.mark.parametrize("name", ["trunc0", "trunc15", "drum2", "drum8", "bam9_1", "foo"])
def test_bad_builtin_names_raise_clear_error(name):
    with pytest.raises(MultiplierError, match=name):
        load_multiplier(name)
