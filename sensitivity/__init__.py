"""Which multiplier where: the per-layer-group sensitivity of a retrained network to each
candidate multiplier and a greedy per-group assignment within an accuracy tolerance
(ALWANN-style); `python -m sensitivity RUN_DIR` (docs/reference/sensitivity.md).

- `groups`: the layer groups and `assigned` (move groups to multipliers within a block);
- `costs`: energy per image of a per-group choice (energy_estimator.profile);
- `measure`: test accuracy of a choice, the sensitivity table, the uniform assignments;
- `greedy`: the greedy assignment; `analysis`: the whole document; `report`: its table.
"""
