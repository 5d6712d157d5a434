"""Shared fixtures: a tiny wav2vec2 on disk, a tiny Kaldi corpus, model configs.

Everything is built locally; nothing is fetched from a hub (HF_HUB_OFFLINE=1).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from gcft_helpers import (  # noqa: E402
    QUICK,
    STRICT_RUNNER,
    copy_recipe,
    make_tiny_corpus,
    make_tiny_wav2vec2,
    run_recipe,
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


@pytest.fixture(scope="session")
def mini_recipe(tmp_path_factory) -> Path:
    """A copy of the mini recipe (repository layout) with one-epoch training configs."""
    return copy_recipe(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="session")
def mini_run(mini_recipe):
    """The quick mini recipe through stages 1-8, then stages 1-7 again, its jobs run by
    a runner as strict about job numbers as ESPnet's (calls in runner_calls.txt)."""
    env = dict(os.environ, cmd_backend=str(STRICT_RUNNER),
               GCFT_RUNNER_CALLS=str(mini_recipe / "runner_calls.txt"))
    first = run_recipe(mini_recipe, *QUICK, env=env)
    again = run_recipe(mini_recipe, *QUICK, "--stop_stage", "7", env=env)
    return first, again
