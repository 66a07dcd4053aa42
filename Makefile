# fmnist: data → train → convert → bench → report.  `make all`, then `make test`.
# Every target installs what it needs, so both work on a fresh Debian / Raspberry Pi OS box
# that has only Python 3.11 (python3-venv) and make.

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
ARTIFACTS ?= artifacts
MODEL     := $(ARTIFACTS)/model.keras
EXTRAS    ?= train,edge,webcam,serve,bench,dev
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
INT8      := $(ARTIFACTS)/model_int8.tflite
# TensorFlow's oneDNN kernels on every x86, not only where they are its default (trainer/__init__.py
# says why); exported so that tests importing keras before trainer get it too.
export TF_ENABLE_ONEDNN_OPTS ?= 1
# Passed through, e.g. make train TRAIN_ARGS="--seed 1", make bench BENCH_ARGS="--training".
TRAIN_ARGS ?=
BENCH_ARGS ?=

.PHONY: all setup data tools-test tools-bench train convert bench report test test-fast test-arm64 lint format clean

# $(call apt_install,PACKAGE,COMMAND): apt-get install PACKAGE unless COMMAND is already there
# (refreshing the package lists only when the first attempt fails).
define apt_install
	@command -v $(2) >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null || { echo "$(2) is missing: install $(1)"; exit 1; }; \
	  echo "Installing Debian's $(1)"; \
	  $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null 2>&1 && $(SUDO) apt-get install -y -q $(1) >/dev/null; }; }
endef

all: data train convert bench report

# A venv with every extra. Stamped: re-runs only when pyproject.toml changes.
setup: $(STAMP)
# Debian ships venv separately (python3-venv): install it when it is missing and apt is there.
$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  command -v apt-get >/dev/null || { echo "$(PYTHON) -m venv failed: install the venv module"; exit 1; }; \
	  rm -rf $(VENV); echo "Installing python3-venv"; \
	  $(SUDO) apt-get install -y -q python3-venv >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null 2>&1 && $(SUDO) apt-get install -y -q python3-venv >/dev/null; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --disable-pip-version-check -q -e '.[$(EXTRAS)]'
	touch $@

# Verified Fashion-MNIST: already present, else Debian's package, else the official download.
data: $(STAMP)
	@if ! $(BIN)/fmnist-train data info >/dev/null 2>&1 && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's dataset-fashion-mnist"; \
	  $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null 2>&1 && $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "apt could not install it; falling back to the download"; \
	fi
	$(BIN)/fmnist-train data fetch

train: $(MODEL)
# What training reads: Fashion-MNIST, the vendored real photos, and the one preprocessing path.
$(MODEL): $(STAMP) $(addprefix trainer/,data.py model.py train.py batches.py photos.py objective.py) \
          edge_runtime/preprocess.py edge_runtime/photos.py data/real-photos/classes.json
	@$(MAKE) --no-print-directory data
	$(BIN)/fmnist-train fit --out-dir $(ARTIFACTS) $(TRAIN_ARGS)

# Every mode, validated on the test set, plus the int8 per-layer error report and C arrays.
convert: $(INT8)
# What conversion runs: the converter and the edge code that validates on every runtime.
CONVERT_DEPS := $(wildcard converter/*.py) $(addprefix edge_runtime/,classifier.py compare.py \
                micro.py photos.py preprocess.py sidecar.py vocab.py worker.py)
$(INT8): $(MODEL) $(CONVERT_DEPS)
	$(BIN)/fmnist-convert --quantize all --debug --format c-array --out-dir $(ARTIFACTS)

bench: $(ARTIFACTS)/benchmarks.json
# Re-run when the server changes (--serve), and after `make test-arm64` adds aarch64 outputs.
$(ARTIFACTS)/benchmarks.json: $(INT8) $(wildcard benchmarks/*.py) edge_runtime/worker.py \
                              $(wildcard edge_runtime/serve/*.py $(ARTIFACTS)/crosscheck_arm64.json)
	@$(MAKE) --no-print-directory tools-bench
	$(BIN)/fmnist-bench --models $(ARTIFACTS) --serve $(BENCH_ARGS)

report: $(ARTIFACTS)/report.html
# serve.png is the browser test's screenshot: `make test` re-renders the report to show it.
$(ARTIFACTS)/report.html: $(MODEL) $(INT8) $(ARTIFACTS)/benchmarks.json trainer/report.py \
                          $(wildcard $(ARTIFACTS)/serve.png)
	$(BIN)/fmnist-train report --out-dir $(ARTIFACTS)

# What the tests drive: a real browser (Debian's chromium; nothing is downloaded at run time),
# systemd-analyze, which checks the unit `fmnist-edge serve --systemd-unit` prints, and wrk.
tools-test: tools-bench
	$(call apt_install,chromium,chromium)
	$(call apt_install,systemd,systemd-analyze)

# The load generator of `fmnist-bench --serve`.
tools-bench:
	$(call apt_install,wrk,wrk)

# The whole suite, including the tests on the real dataset and on the real model, which it
# trains and converts first when artifacts/ does not hold them yet (CI runs this).
test: $(STAMP) tools-test $(INT8)
	@$(MAKE) --no-print-directory data
	$(BIN)/python -m pytest
	@# The report again, now with the browser test's screenshot (not a bench re-run: only render).
	@if [ -f $(ARTIFACTS)/benchmarks.json ]; then $(BIN)/fmnist-train report --out-dir $(ARTIFACTS); fi

# Only the fast tests: no TensorFlow training, no dataset.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The edge tests under an emulated aarch64 Python 3.11 (Pi OS-like), both runtimes, and a
# comparison of aarch64 and x86 outputs. Slow (emulation): a few minutes.
test-arm64: $(STAMP)
	@$(MAKE) --no-print-directory data
	tests/arm64/run.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(ARTIFACTS) .pytest_cache .ruff_cache
