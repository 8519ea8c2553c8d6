"""Reading the references' published weights: torch .pth files without torch, TF checkpoints."""
