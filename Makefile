# Two commands do all the set-up on a fresh machine:  `make run` (install + the main job) and `make test` (install + every test).
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
THREADS_EACH := $(shell python3 -c 'import os; print(max(1, (os.cpu_count() or 1)//2))')

.PHONY: install browser run test check-nbs nbtest pytest readme docs bench-quick bench

# tests never ask the Hugging Face hub: what they use is installed or made by the tests themselves
export HF_HUB_OFFLINE := 1

$(BIN)/leaf_fastai: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/leaf_fastai

# the app's tests drive a real browser: Debian's chromium through Playwright (Playwright's own browser download needs the internet)
browser:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

run: install
	$(BIN)/leaf_fastai train --data $(DATA)/leaves-mini --size 96 --epochs 1 --out runs/mini --overwrite
	$(BIN)/leaf_fastai predict --run runs/mini --data $(DATA)/leaves-mini --tta 2 --out runs/mini/submission.csv

# notebooks clean, package and README in sync with them
check-nbs: install
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export
	$(BIN)/python tools/readme.py
	@git status --porcelain -- nbs leaf_fastai README.md | grep . && { echo "nbs/, leaf_fastai/ or README.md changed: run nbdev-clean, nbdev-export, python tools/readme.py and commit"; git diff --stat; exit 1; } || true

# two notebooks at a time, each with its share of the cores: two of two torch threads each on two cores took twice as long
nbtest: install browser
	OMP_NUM_THREADS=$(THREADS_EACH) $(BIN)/nbdev-test --n-workers 2

# two test files at a time (pytest-xdist, one worker per core, whole files per worker so that a file's runs are made once):
# most of a test is a `leaf_fastai` process starting up (imports on one core), so two side by side take the time of one
pytest: install browser
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25 tests

test: check-nbs nbtest pytest

readme: install
	$(BIN)/python tools/readme.py

# run every notebook and keep its outputs (the documentation), then clean and export
docs: install browser
	$(BIN)/python tools/run_nbs.py
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export
	$(BIN)/python tools/readme.py

bench-quick: install
	$(BIN)/python bench/b1_accuracy.py --quick
	$(BIN)/python bench/b2_throughput.py

bench: install
	$(BIN)/python bench/b1_accuracy.py --sides plain,leaf,leaf1,fastai_frozen
	$(BIN)/python bench/b2_throughput.py
	$(BIN)/python bench/b3_scaling.py
