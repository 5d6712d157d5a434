# make setup | make demo | make demo-matrix | make test | make check
# Each target sets up what it needs: tools/venv (Python packages) and sclite.
SHELL := /bin/bash
VENV_PY := tools/venv/bin/python
DEMO := egs2/mini_gcft/gcft1

.PHONY: setup demo demo-matrix test check

setup:
	tools/setup_venv.sh
	tools/install_sctk.sh || echo "sclite unavailable: scoring will use jiwer"

# Everything: unit, model and CLI tests, the recipes end to end, Slurm (what CI runs).
test: setup
	HF_HUB_OFFLINE=1 $(VENV_PY) -m pytest --durations=25 test

# The fast lane while changing code: no training, no recipe run, no Slurm
# (the tests marked slow are left out; see test/conftest.py).
check: setup
	HF_HUB_OFFLINE=1 $(VENV_PY) -m pytest -m "not slow" --durations=10 test

# The embedded mini recipe, stages 1-8, all four variants, offline on the CPU.
demo: setup
	cd $(DEMO) && ./run.sh
	@echo
	@cat $(DEMO)/RESULTS.md
	@echo
	@echo "Results: $(DEMO)/RESULTS.md (records: RESULTS.json, chart: RESULTS.png), models and decodes: $(DEMO)/exp/"

# The paper's experiment matrix on the demo corpus: audio context, far cues, degraded
# context, sweeps (alpha; N previous utterances joined or as rows). After make demo it
# reuses the demo's data, contexts and models; RESULTS.* gain its records, RESULTS_sweep.*.
demo-matrix: setup
	cd $(DEMO) && ./run_matrix.sh
	@echo
	@echo "Results: $(DEMO)/RESULTS.md (records: RESULTS.json), sweeps: $(DEMO)/RESULTS_sweep.md"
