"""Per-dataset defaults of the two programs, in one place.

The search reads the retrain's network size from here: it costs energy on the network that
`train.py` will build from the derived genotype (`--energy_channels`, `--energy_layers`), so
budgets mean the same thing in both programs. CIFAR values are DARTS's (Liu et al., 2019);
the embedded `shapes` values are sized so that each default run ends within 15 minutes on a
2-core CPU (see the README's "Default runs" section for the choice).
"""

# train.py
TRAIN_DEFAULTS = {
    "shapes": {"batch_size": 64, "epochs": 15, "init_channels": 12, "layers": 6,
               "n_train": 2048, "n_test": 1024, "image_size": 32, "auxiliary": False,
               "cutout": False, "drop_path_prob": 0.0},
    "default": {"batch_size": 96, "epochs": 600, "init_channels": 36, "layers": 20,
                "n_train": None, "n_test": None, "image_size": 32, "auxiliary": True,
                "cutout": True, "drop_path_prob": 0.2},
}

# train_search.py; energy_channels / energy_layers: the retrain network of the same dataset
SEARCH_DEFAULTS = {
    "shapes": {"batch_size": 32, "init_channels": 8, "layers": 5, "n_train": 128,
               "n_test": 256, "image_size": 32, "multipliers": "exact,bam4_4",
               "energy_channels": TRAIN_DEFAULTS["shapes"]["init_channels"],
               "energy_layers": TRAIN_DEFAULTS["shapes"]["layers"],
               "energy_image_size": TRAIN_DEFAULTS["shapes"]["image_size"], "warmup_epochs": 0},
    "default": {"batch_size": 64, "init_channels": 16, "layers": 8, "n_train": None,
                "n_test": None, "image_size": 32, "multipliers": "exact",
                "energy_channels": TRAIN_DEFAULTS["default"]["init_channels"],
                "energy_layers": TRAIN_DEFAULTS["default"]["layers"],
                "energy_image_size": TRAIN_DEFAULTS["default"]["image_size"], "warmup_epochs": 0},
}
