"""The pure grading engine: policy model, presets, bulk evaluation. No I/O."""
