"""Sources of images beside the loaders of `data.py`: the procedural generator of the embedded
`shapes` dataset (`shapes`)."""
