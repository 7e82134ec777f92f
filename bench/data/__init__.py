"""Data: the manifest schema, dataset descriptions and formats, the synthetic benchmark, the frame
cache and the loaders that feed batches to the device."""
