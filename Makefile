# kernel_py. A fresh Debian machine needs two commands:
#   make qemu    boot the guest to its console (Ctrl-A X leaves QEMU)
#   make test    model tests on the host, then guest tests under QEMU
# Both install what they need first: Debian packages, the virtualenv, and
# MicroPython's source (fetched, pinned, never committed).
SHELL := /bin/bash

MEM ?= 256M
CMDLINE ?=
ACCEL ?= tcg
QMP ?= build/qmp.sock
PYTEST_ARGS ?=

VENV := .venv
PY := $(VENV)/bin/python
STAMPS := build/stamps
MPY_DIR := build/micropython-1.25.0
IMAGE := guest/build/kernel.bin
DEB_PACKAGES := qemu-system-x86 qemu-utils gcc make python3 python3-venv xz-utils mtools dosfstools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: qemu test test-model test-guest image bench soak deps venv clean

qemu: $(IMAGE)
	qemu-system-x86_64 -machine pc -cpu max -accel $(ACCEL) -m $(MEM) \
	  -display none -no-reboot -serial mon:stdio -monitor none \
	  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	  -qmp unix:$(QMP),server=on,wait=off \
	  -kernel $(IMAGE) -append "$(CMDLINE)" || true

test: $(IMAGE) venv
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-model: venv
	$(PY) -m pytest tests/model $(PYTEST_ARGS)

test-guest: $(IMAGE) venv
	$(PY) -m pytest tests/guest $(PYTEST_ARGS)

bench: $(IMAGE) venv
	$(PY) bench/run.py

# Long runs (issue 7): the seeded soak over slub, slab and slob (kernel
# `check` and host page-table checks, data checksums through swap, PROT_NONE
# and COW), then 10,000 console fuzz lines; it ends with the summary and
# writes build/soak-frag.png and build/soak-memmap-BACKEND.png; then 2x RAM
# of shared anonymous memory through swap (tests/guest/test_swap.py).
SOAK_OPS ?= 3000
SOAK_SEED ?= 1
SOAK_FUZZ ?= 10000
soak: $(IMAGE) venv
	@mkdir -p build
	$(PY) qemu/kpyqemu/soak.py --ops $(SOAK_OPS) --seed $(SOAK_SEED) --png-dir build --fuzz-lines $(SOAK_FUZZ)
	KPY_SHM_2X=1 $(PY) -m pytest tests/guest/test_swap.py -k 2x_ram_of_shared

image: $(IMAGE)

# Always ask guest/Makefile: it knows when the image is up to date.
$(IMAGE): $(MPY_DIR)/.fetched FORCE
	$(MAKE) -C guest

$(MPY_DIR)/.fetched: | $(STAMPS)/deps
	guest/fetch-micropython.sh build

deps: $(STAMPS)/deps
$(STAMPS)/deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml | $(STAMPS)/deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf guest/build build/stamps

FORCE:
