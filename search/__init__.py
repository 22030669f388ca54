"""The parts of the search around the supernet of `model_search.py`: the architecture (alpha
tables, their weights, the derived genotype: `architecture`), the candidate space and its
derivation (`space`), an edge's candidate ops (`candidates`), the cost tables priced from the
topology (`cost_tables`) and the energy model reading them (`energy_model`), one bilevel epoch
(`bilevel`), one-shot evaluation of a derived cell (`one_shot`) and the split of parameters
into alphas and weights (`params`)."""
