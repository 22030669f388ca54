"""What the programs report: a search's logs, TensorBoard figures and genotype record
(`search_report`), a retrain's evaluation and STL verdict (`retrain_report`), and the drawings
of alphas and cells (`drawings`)."""
