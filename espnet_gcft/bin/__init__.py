"""Command-line entry points: ``python -m espnet_gcft.bin.<name> --help``."""
