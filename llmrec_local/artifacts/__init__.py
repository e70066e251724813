"""Artifacts: the folders through which stages talk, one module per kind.

`base` holds what every kind shares (staged writing, manifest, completion marker, skip rule); each other module owns
one kind's file names, schema, writer and reader: `dataset`, `candidates`, `augmentation`, `embeddings`, `run`,
`evaluation`. No other module names an artifact's files.
"""
