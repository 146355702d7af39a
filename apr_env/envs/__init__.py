"""Environment classes: `APRCountdownEnv` (Gymnasium) and `APRCountdownParallelEnv` (PettingZoo)."""
