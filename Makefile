# The README's commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Chainer 7.8.1's setup.py imports pkg_resources: build it with these tools, without isolation.
BUILD_TOOLS := 'setuptools>=64,<70' wheel

.PHONY: install test demo pipeline clean-venv gpu-check gpu-bundle

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(BUILD_TOOLS)
	$(BIN)/python -m pip install --quiet --no-build-isolation 'chainer==7.8.1'
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	@touch $(STAMP)

# The quick suite, then its end-to-end cases (marked slow), then the regression test once more
# under another OpenBLAS kernel (Prescott, which every x86-64 CPU runs), so that every run of it
# checks two kernels against the recording.
test: install
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest tests -m slow
	@if [ "$$(uname -m)" = x86_64 ]; then \
	  echo 'regression test under OPENBLAS_CORETYPE=Prescott:'; \
	  OPENBLAS_CORETYPE=Prescott $(BIN)/python -m pytest -m regression tests/test_regression.py; \
	fi

clean-venv:
	rm -rf $(VENV)

# The demo: the paper's finding on the real digits data, CPU, no network. Table 2 at 50 %
# symmetric noise with cross entropy, Tanaka et al. and ours, ten trials (so that the paired test
# can decide between ours and Tanaka et al. at 0.05), every schedule at three quarters, then
# Figure 3's symmetric panel and the step-1 figures from the same runs, then the table again
# (gathered, nothing trained): its last lines are the finding (labels corrected, ours against each
# row with the paired p, and whether the numbers are the recording's in results/recorded/demo/).
# Runs go to runs/demo, outputs to results/digits-x0.75/. On an x86-64 CPU with AVX2 and FMA it
# runs in exact CPU mode (MIXUP_EXACT_CPU=0 turns that off).
DEMO := --dataset digits --trials 10 --epochs-scale 0.75 --jobs 2 \
        --methods cross_entropy,tanaka,ours --out runs/demo
EXACT_CPU_HERE := import chainer_compat; print(int(chainer_compat.exact_cpu_possible()))

demo: install
	@exact=$${MIXUP_EXACT_CPU:-$$($(BIN)/python -c '$(EXACT_CPU_HERE)')}; \
	if [ "$$exact" = 1 ]; then echo "exact CPU mode: $(DEMO_EXACT)"; \
	elif [ "$$exact" = 0 ]; then echo "exact CPU mode off: $(DEMO_NOT_EXACT)"; fi; \
	set -x; \
	MIXUP_EXACT_CPU=$$exact $(BIN)/python reproduce/table2.py $(DEMO) --rates 0.5 && \
	MIXUP_EXACT_CPU=$$exact $(BIN)/python reproduce/figure3.py $(DEMO) --symmetric-rate 0.5 \
	  --asymmetric-rate none && \
	MIXUP_EXACT_CPU=$$exact $(BIN)/python reproduce/table2.py $(DEMO) --rates 0.5 --gather-only
DEMO_EXACT := the numerics pinned; the last line says whether the numbers are those of \
  results/recorded/demo/
DEMO_NOT_EXACT := the numbers differ from results/recorded/demo/ by trial noise (exact mode \
  needs an x86-64 CPU with AVX2 and FMA)

# A look at the whole pipeline, not at the methods: every computed method, two noise rates per
# table, five trials, every schedule shortened to a fifth (step 1 then barely corrects the labels,
# and ours can trail cross entropy). Runs go to runs/pipeline, outputs to results/digits-x0.2/.
PIPELINE := --dataset digits --trials 5 --epochs-scale 0.2 --jobs 2 --out runs/pipeline

pipeline: install
	$(BIN)/python reproduce/table2.py $(PIPELINE) --rates 0.5,0.8 \
	  --methods cross_entropy,forward_t,tanaka,pencil,ours
	$(BIN)/python reproduce/table3.py $(PIPELINE) --rates 0.2,0.4
	$(BIN)/python reproduce/figure3.py $(PIPELINE) --symmetric-rate 0.8 --asymmetric-rate 0.4

# The GPU check (reproduce/README.md, "GPU check"): probe, parity, benchmark, GPU tests, runs
# per GPU, every method, TF32, within --budget (300 s); results/benchmarks/<gpu>.json/.md.
# Needs CuPy in the environment: .venv/bin/pip install -e '.[cuda12]' after make install.
gpu-check: install
	$(BIN)/python reproduce/gpu_check.py

# For a Python 3.12 GPU machine without network: .carry/ (under 60 MiB, or it fails), with the
# numpy 1.26 / CuPy 13 / Chainer 7.8.1 / pytest packages for Python 3.12 and the prelude that
# unpacks them (reproduce/tools/gpu_bundle.sh says what is carried and what not: no matplotlib).
# There, from the repository root:
#   source .carry/prelude.sh && python3 reproduce/gpu_check.py
# No cuDNN is carried, and none can be: the carried CuPy is the CUDA 13 build (that machine has
# CUDA 13 only), which has no cuDNN binding; no cuDNN 8 exists for CUDA 13 (nvidia-cudnn-cu13
# starts at 9.12, which CuPy 13 cannot use); a CUDA 12 stack instead (cupy-cuda12x + the 705 MB
# nvidia-cudnn-cu12 8.9 wheel + the CUDA 12 libraries CuPy needs) is far over the 60 MiB carried.
gpu-bundle:
	PYTHON=$(PYTHON) bash reproduce/tools/gpu_bundle.sh
	@echo 'note: the bundle has no cuDNN (CuPy 13 for CUDA 13 has none; README, "GPU")'
