"""The benchmark behind scripts/bench: our Rust functions against a Python 3 + boto3 baseline, in
the same local AWS, on the same machine, in one run."""
