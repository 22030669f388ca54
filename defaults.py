"""Per-dataset defaults of the two programs, in one place.

The search reads the retrain's network size from here: it costs energy on the network that
`train.py` will build from the derived genotype (`--energy_channels`, `--energy_layers`,
`--energy_image_size`), so budgets mean the same thing in both programs. CIFAR values are
DARTS's (Liu et al., 2019). The embedded `shapes` values are sized so that each default run
ends within tens of minutes on a 2-core CPU and still learns (search 10-12 min and retrain 4-5
min on a 2-core AMD EPYC Zen 5, about twice that on a 2-core Intel Xeon and on an AVX2-only
EPYC Zen 3, docs/reference/default_runs.md):
16x16 images (a 5-layer CNN reaches 0.93 on them in 10 epochs), the DARTS ops without the two
5x5 convs (half the conv work of a step), the weights on AdamW at lr 3e-3 (SGD at PC-DARTS's
lr 0.1, Xu et al., 2020, left the supernet near chance for a varying part of the run,
docs/supernet_stability.md; batch 128 halves the per-image overhead of batch 64), a weight
warm-up before the alphas move (40 %; PC-DARTS: 15 of 50 epochs), and an architecture step
before every third weight step with an alpha learning rate sized for the run's 130
architecture steps (DARTS's 3e-4 is for ~20k): the same supernet accuracy and energy descent as
a step before every weight step at 5e-3 or every second at 1e-2, in less search time
(docs/search_profile.md, docs/default_runs.md); the warm-up's weight steps in float32 (the
alphas do not read the multipliers yet: 1.7x faster per step, docs/supernet_stability.md).
"""

from genotypes import PRIMITIVES

SHAPES_PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                     "dil_conv_3x3")
# the exact 8-bit multiplier (always in the set) plus built-ins spanning error and energy:
# drum6 (MRE 1.9 %, 0.81 x exact energy), kulkarni (3.3 %, 0.68), drum4 (5.9 %, 0.5),
# bam4_4 (13.6 %, 0.5); all exactly low-rank, so the search's emulation is exact
SHAPES_MULTIPLIERS = "exact,drum6,kulkarni,drum4,bam4_4"

# train.py
TRAIN_DEFAULTS = {
    "shapes": {"batch_size": 128, "weight_optimizer": "sgd",
               "learning_rate": {"sgd": 0.1, "adamw": 3e-3}, "epochs": 15, "init_channels": 12,
               "layers": 6, "n_train": 10000, "n_test": 1024, "image_size": 16,
               "auxiliary": False, "cutout": False, "drop_path_prob": 0.0,
               "float_warmup_epochs": "33%"},
    "default": {"batch_size": 96, "weight_optimizer": "sgd",
                "learning_rate": {"sgd": 0.025, "adamw": 3e-3}, "epochs": 600, "init_channels": 36,
                "layers": 20, "n_train": None, "n_test": None, "image_size": 32,
                "auxiliary": True, "cutout": True, "drop_path_prob": 0.2,
                "float_warmup_epochs": 0},
}

# train_search.py; energy_*: the retrain network of the same dataset (deployed units)
SEARCH_DEFAULTS = {
    # learning_rate per --weight_optimizer: AdamW leaves the supernet's slow start that SGD at
    # 0.1 sits in for a varying part of the run (runner/weight_optimizers.py)
    "shapes": {"batch_size": 128, "weight_optimizer": "adamw",
               "learning_rate": {"sgd": 0.1, "adamw": 3e-3},
               "learning_rate_min": {"sgd": 1e-3, "adamw": 3e-5}, "init_channels": 8, "layers": 5,
               "n_train": 3200, "n_test": 1000, "val_images": 512, "image_size": 16,
               "primitives": ",".join(SHAPES_PRIMITIVES), "multipliers": SHAPES_MULTIPLIERS,
               "warmup_epochs": "40%", "float_warmup": True, "lr_warmup_epochs": 0,
               # an alpha step before every third weight step at 1.5x the lr of every second
               # (the same alpha movement): the same supernet accuracy and energy descent over
               # 3 seeds x 1 and 2 threads, ~1.5 minutes less (docs/default_runs.md)
               "arch_learning_rate": 1.5e-2,
               "arch_every": 3,
               # ~55 s; Kendall tau against the README's 15-epoch retrain of 16 genotypes
               # 0.53 (batch 128: 0.41; derived_acc 0.0 on the 5-epoch retrain), docs/
               # search_quality.md
               "rank_proxy_epochs": 10, "rank_proxy_batch_size": 32,
               "energy_channels": TRAIN_DEFAULTS["shapes"]["init_channels"],
               "energy_layers": TRAIN_DEFAULTS["shapes"]["layers"],
               "energy_image_size": TRAIN_DEFAULTS["shapes"]["image_size"]},
    "default": {"batch_size": 64, "weight_optimizer": "sgd",
                "learning_rate": {"sgd": 0.025, "adamw": 3e-3},
                "learning_rate_min": {"sgd": 1e-3, "adamw": 3e-5},
                "init_channels": 16, "layers": 8,
                "n_train": None, "n_test": None, "val_images": None, "image_size": 32,
                "primitives": ",".join(PRIMITIVES), "multipliers": "exact",
                "warmup_epochs": 0, "float_warmup": False, "lr_warmup_epochs": 0,
                "arch_learning_rate": 3e-4, "arch_every": 1,
                "rank_proxy_epochs": 0,  # 10 epochs of a CIFAR-sized proxy: opt in
                "rank_proxy_batch_size": None,  # the search's --batch_size
                "energy_channels": TRAIN_DEFAULTS["default"]["init_channels"],
                "energy_layers": TRAIN_DEFAULTS["default"]["layers"],
                "energy_image_size": TRAIN_DEFAULTS["default"]["image_size"]},
}
