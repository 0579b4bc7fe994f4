"""stackwatch's benchmark suite: every figure is reported against baselines measured in the same run."""
