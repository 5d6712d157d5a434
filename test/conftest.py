"""Shared fixtures: a tiny wav2vec2 on disk, a tiny Kaldi corpus, model configs.

Everything is built locally; nothing is fetched from a hub (HF_HUB_OFFLINE=1).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from gcft_helpers import (  # noqa: E402
    make_tiny_corpus,
    make_tiny_wav2vec2,
)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end runs (still part of `make test`)")


@pytest.fixture(scope="session")
def wav2vec2_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-dim wav2vec2 saved with its preprocessor_config.json."""
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("wav2vec2"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Kaldi data dir `data/` with wav.scp, text, utt2spk and a context.scp."""
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"))
