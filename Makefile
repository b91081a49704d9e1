# The README's two commands: `make demo` (main job on the embedded digits data) and `make test`.
# Both create .venv and install everything the project needs on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test browser test-all lint bench compare-setup compare clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "advlab needs Python >= 3.10"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/advlab demo --out runs/demo

# Debian's Chromium and ChromeDriver, for the report's browser test (root or sudo needed once).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
			>/dev/null; }

# Two workers (the tests run one intra-op thread each); a test module stays on one worker, so
# its module fixtures (trained models) are built once.
test: $(STAMP) browser
	$(PY) -m pytest -q -n 2 --dist loadfile

test-all: $(STAMP) browser
	$(PY) -m pytest -q -n 2 --dist loadfile -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_projections.py
	$(PY) benchmarks/bench_attacks.py

# The reference libraries, for benchmarks only: --no-deps keeps them from replacing torch.
compare-setup: $(STAMP)
	$(PY) -m pip install --quiet -e '.[compare]'
	$(PY) -m pip install --quiet --no-deps torchattacks==3.5.1 \
		adversarial-robustness-toolbox==1.20.1 foolbox==3.3.4 eagerpy==0.30.0 adv-lib==0.2.8

compare: compare-setup
	$(PY) benchmarks/compare.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
