"""ImageNet-tree and demo-data TFRecord builders (slim keys, labels 1..N) and a verifier."""
