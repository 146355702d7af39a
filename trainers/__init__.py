"""Training: SFT data and trainers, tree-aware GRPO."""
