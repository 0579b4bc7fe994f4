"""The pipeline: reading inputs, running events through detection and into the store."""
