# make setup | make demo | make test
# Each target sets up what it needs: tools/venv (Python packages) and sclite.
SHELL := /bin/bash
VENV_PY := tools/venv/bin/python
DEMO := egs2/mini_gcft/gcft1

.PHONY: setup demo test

setup:
	tools/setup_venv.sh
	tools/install_sctk.sh || echo "sclite unavailable: scoring will use jiwer"

test: setup
	HF_HUB_OFFLINE=1 $(VENV_PY) -m pytest --durations=15 test

# The embedded mini recipe, stages 1-8, all four variants, offline on the CPU.
demo: setup
	cd $(DEMO) && ./run.sh
	@echo
	@cat $(DEMO)/RESULTS.md
	@echo
	@echo "Results: $(DEMO)/RESULTS.md (records: RESULTS.json, chart: RESULTS.png), models and decodes: $(DEMO)/exp/"
