# Two commands on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup sysdeps test demo demo-train demo-circuitpython lint natmod natmod-pico pico-setup bench mip clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages for the cross-built native modules and their tests (installs as root).
sysdeps:
	@tools/system_deps.sh

test: setup sysdeps natmod-x64 natmod-pico pico-setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -ra

demo: setup
	$(BIN)/python -m minerva_packager.demo
	$(BIN)/python -m minerva_packager.demo_train

# The board fine-tunes its model to shifted digits (docs/training.md): the second part of
# `make demo`, on its own.
demo-train: setup
	$(BIN)/python -m minerva_packager.demo_train

# The inference part on a virtual CircuitPython board (../shared/circuitpython), capsules
# dropped into its CIRCUITPY folder.
demo-circuitpython: setup
	$(BIN)/python -m minerva_packager.demo --circuitpython

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/run.py

# The device package for mip, compiled per arch (dist/mip/<arch>_6.3/package.json), with the
# native modules built so far; serve dist/mip over HTTP(S) and mip.install(".../package.json").
mip: setup
	$(BIN)/python -m minerva_packager.board.mip dist/mip

# Native module: dist/<arch>_6.3/minerva_nat.mpy per arch (natmod/Makefile, docs/natmod.md).
NATMOD_ARCHES := x64 armv6m armv7emsp xtensawin

natmod: $(addprefix natmod-,$(NATMOD_ARCHES))
	@echo "natmod: skipped rv32imc: mpy-cross-v6-3's mpy_ld.py (MicroPython 1.23) has no RISC-V"

# The emulated Pico's tests load the armv6m module; without the ARM toolchain they skip.
natmod-pico:
	@if command -v arm-none-eabi-gcc >/dev/null; then $(MAKE) --no-print-directory natmod-armv6m; \
	else echo "natmod-pico: no arm-none-eabi-gcc, skipped (the emulated Pico tests will skip)"; fi

# rp2040js (pinned in tools/pico/package-lock.json) for `minerva vboard --emulate`.
PICO_MODULES := tools/pico/node_modules/.package-lock.json

pico-setup: $(PICO_MODULES)

$(PICO_MODULES): tools/pico/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tools/pico --no-audit --no-fund; \
	else echo "pico-setup: npm is missing, skipped (apt-get install nodejs npm; the emulated" \
		"Pico tests will skip)"; fi

natmod-%: setup
	@mkdir -p build/natmod/$*
	$(MAKE) --no-print-directory -C build/natmod/$* -f $(CURDIR)/natmod/Makefile ARCH=$* \
		MPY_DIR=$(CURDIR)/$$(tools/fetch_mpy_sdk.sh $(BIN)/python) \
		PYTHON=$(CURDIR)/$(BIN)/python DIST=$(CURDIR)/dist/$*_6.3

clean:
	rm -rf dist build .cache
