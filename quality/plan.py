"""What the benchmark runs: the searches (DARTS at each energy weight and search seed; the
black-box strategies at the DARTS search's wall time) and the genotypes it retrains, each
with a fixed directory name under the benchmark directory.

Groups (fronts): `searched` (`search-ew0-s1`: the genotype of the DARTS search at lambda 0,
seed 1), `random` (`random-s3`: the third draw of the searches' op x multiplier space),
`uniform` (`DARTS_V2@drum4`, `best-random@drum4`: one multiplier of the set, `exact`
included, on every conv of the published cell and of the most accurate random cell), and
one per black-box strategy (`nsga2-s1-f2`: the second of the `--blackbox_front` members,
spread by energy, of the Pareto front of the nsga2 search with seed 1).
"""

from __future__ import annotations

import itertools
import shlex

import genotypes
import train_search
from quality import sizing
from search.space import EXACT, SearchSpace
from tradeoff.plan import parse_numbers, stripped

GROUPS = ("searched", "random", "uniform", "nsga2", "tpe")
STRATEGIES = ("nsga2", "tpe")
BEST_RANDOM = "best-random"


def multiplier_set(args) -> list[str]:
    names = train_search.split_names(args.multipliers or train_search.SEARCH_DEFAULTS[
        "shapes"]["multipliers"])
    return list(dict.fromkeys([EXACT, *names]))


def search_flag(args, flag: str) -> str | None:
    """The value of `flag` in --search_args, if given there."""
    flags = shlex.split(args.search_args)
    return flags[flags.index(flag) + 1] if flag in flags else None


def primitive_set(args) -> list[str]:
    """The searches' op set (a --primitives in --search_args, else the shapes default), so
    that the random genotypes come from the space the searches choose in."""
    given = search_flag(args, "--primitives")
    return train_search.split_names(given or train_search.SEARCH_DEFAULTS["shapes"]["primitives"])


def random_space(args) -> SearchSpace:
    """The searches' space: their ops, multipliers and fixed layers' multiplier (the search's
    default: exact 8-bit)."""
    return SearchSpace(tuple(primitive_set(args)), tuple(multiplier_set(args)),
                       fixed=search_flag(args, "--fixed_multiplier") or EXACT)


def strategies(args) -> list[str]:
    return [s for s in train_search.split_names(args.strategies) if s] if args.strategies else []


def searches(args) -> list[dict]:
    """Every search: DARTS per energy weight and seed, then each black-box strategy per seed."""
    darts = [{"name": f"search-ew{w:g}-s{seed}", "strategy": "darts", "energy_weight": w,
              "seed": seed}
             for w in parse_numbers(args.energy_weights, "--energy_weights")
             for seed in range(1, args.search_seeds + 1)]
    blackbox = [{"name": f"{strategy}-s{seed}", "strategy": strategy, "seed": seed}
                for strategy in strategies(args) for seed in range(1, args.blackbox_seeds + 1)]
    return darts + blackbox


def random_count(args) -> int:
    """--random, or the equal-compute count of quality/sizing.py."""
    darts = sum(1 for s in searches(args) if s["strategy"] == "darts")
    return args.random if args.random is not None else sizing.equal_compute_random(args, darts)


def genotypes_plan(args) -> list[dict]:
    """Every genotype the benchmark retrains: name, group and where its genotype comes from
    (`search`: a search directory; `genotype`: fixed now; `blackbox`: (search, front index);
    `best_random`: a multiplier put on the best random cell once the random ones are done)."""
    multipliers = multiplier_set(args)
    entries = [{"name": s["name"], "group": "searched", "search": s["name"]}
               for s in searches(args) if s["strategy"] == "darts"]
    space = random_space(args)
    entries += [{"name": f"random-s{seed}", "group": "random",
                 "genotype": space.sample_genotype(seed)}
                for seed in range(1, random_count(args) + 1)]
    published = genotypes.PUBLISHED[args.published]
    entries += [{"name": f"{args.published}@{m}", "group": "uniform",
                 "genotype": on_every_conv(published, m)} for m in multipliers]
    entries += [{"name": f"{BEST_RANDOM}@{m}", "group": "uniform", "best_random": m}
                for m in multipliers]
    entries += [{"name": f"{s['name']}-f{k}", "group": s["strategy"], "blackbox": (s["name"], k)}
                for s in searches(args) if s["strategy"] != "darts"
                for k in range(1, args.blackbox_front + 1)]
    return entries


def on_every_conv(genotype, multiplier: str):
    """`genotype` with every conv, cells' ops (any multiplier they had replaced) and fixed
    layers (stem, preprocess), on `multiplier`."""
    return genotypes.on_multiplier(stripped(genotype), multiplier)


def front_pick(front_size: int, wanted: int, index: int) -> int | None:
    """The position (0-based) in a front of `front_size`, sorted by energy, of the `index`-th
    (1-based) of `wanted` members spread evenly from lowest to highest energy; None when a
    smaller front has no further distinct member for it."""
    if front_size == 0:
        return None
    picks = list(dict.fromkeys(round(k * (front_size - 1) / max(wanted - 1, 1))
                               for k in range(wanted)))
    return picks[index - 1] if index <= len(picks) else None


def retrain_jobs(args, entries: list[dict]):
    """(entry, seed) in the order they run: seed by seed, the groups in turn (so that a time
    budget leaves every group with some runs); the best-random baselines last, as they wait
    for every random retrain."""
    later = [e for e in entries if "best_random" in e]
    first = [e for e in entries if "best_random" not in e]
    by_group = [[e for e in first if e["group"] == group] for group in GROUPS]
    interleaved = [e for row in itertools.zip_longest(*by_group) for e in row if e]
    for entries_now in (interleaved, later):
        for seed in range(1, args.seeds + 1):
            for entry in entries_now:
                yield entry, seed
