# make setup | make test
# Each target sets up what it needs: tools/venv (Python packages) and sclite.
SHELL := /bin/bash
VENV_PY := tools/venv/bin/python

.PHONY: setup test

setup:
	tools/setup_venv.sh
	tools/install_sctk.sh || echo "sclite unavailable: scoring will use jiwer"

test: setup
	HF_HUB_OFFLINE=1 $(VENV_PY) -m pytest test
