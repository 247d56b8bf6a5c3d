# kernel_py. A fresh Debian machine needs two commands:
#   make qemu    boot the guest to its console (Ctrl-A X leaves QEMU)
#   make test    model tests on the host, then guest tests under QEMU
# Both install what they need first: Debian packages, the virtualenv, and
# MicroPython's source (fetched, pinned, never committed). They also build the
# user programs (user/, static Linux x86-64 executables) and the disks they
# live on (build/disk.img, FAT, the kernel's sda; build/swap.img, sdb).
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
# libc6-dev: glibc's static libc.a for the user programs; util-linux: mkswap
DEB_PACKAGES := qemu-system-x86 qemu-utils gcc make python3 python3-venv xz-utils mtools dosfstools \
	libc6-dev util-linux
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
Q := $(if $(V),,@)

# --- user programs (user/*.c) -> build/user/, static glibc -----------------
USER_CC ?= gcc
USER_CFLAGS ?= -static -O2 -fno-omit-frame-pointer -Wall
USER_DIR := build/user
USER_PROGS := hello usertests spin hog malloc100 segv forkbomb sysbench mmstress forkcow \
	leak_loop leak_server leak_fork leak_realloc noleak_basic noleak_pool server pool loadtest pressure vmstat
USER_BINS := $(addprefix $(USER_DIR)/,$(USER_PROGS))
# mmbench is the planning side's file, built unmodified as its README says
# (gcc -static -O2); a clone without it builds everything else.
MMBENCH_SRC ?= ../shared/mmbench/mmbench.c
MMBENCH_BIN := $(if $(wildcard $(MMBENCH_SRC)),$(USER_DIR)/mmbench)
# Linux's mm self-tests, from Debian's linux-source-6.1 (user/fetch-selftests.sh
# pins the version and the .deb's sha256; SELFTESTS=0 leaves them out)
SELFTESTS ?= 1
SELFTESTS_VERSION := $(shell sed -n 's/^DEB_VERSION=\([^ ]*\).*/\1/p' user/fetch-selftests.sh)
SELFTESTS_SRC := build/linux-selftests-$(SELFTESTS_VERSION)
SELFTESTS_PROGS := map_fixed_noreplace mremap_dontunmap mremap_test
SELFTESTS_BINS := $(if $(filter 1,$(SELFTESTS)),$(addprefix $(USER_DIR)/,$(SELFTESTS_PROGS)))
# execve's test files (truncated, corrupt headers, dynamic...) and EXPECT
BADELF := $(USER_DIR)/badelf/EXPECT
# the disks: data (FAT16, kept across boots, programs refreshed in /bin)
# and swap (Linux's swap header); `make qemu` attaches both
DISK := build/disk.img
DISK_MB ?= 128
SWAP := build/swap.img
SWAP_MB ?= 64
# the root file system: an initramfs (newc cpio) with BusyBox from Debian's
# busybox-static (user/fetch-busybox.sh pins the version and the .deb's
# sha256), passed to the kernel as a multiboot module (-initrd)
BUSYBOX_VERSION := $(shell sed -n 's/^FILE_VERSION=\([^ ]*\).*/\1/p' user/fetch-busybox.sh)
BUSYBOX_DIR := build/busybox-$(BUSYBOX_VERSION)
BUSYBOX := $(BUSYBOX_DIR)/bin/busybox
INITRAMFS := build/initramfs.cpio
DRIVES ?= -drive file=$(DISK),format=raw,if=ide,index=0,media=disk \
	-drive file=$(SWAP),format=raw,if=ide,index=1,media=disk

.PHONY: initramfs qemu test test-model test-guest image bench soak deps venv clean user disks selftests mmbench-note

qemu: $(IMAGE) disks initramfs
	qemu-system-x86_64 -machine pc -cpu max -accel $(ACCEL) -m $(MEM) \
	  -display none -no-reboot -serial mon:stdio -monitor none \
	  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	  -qmp unix:$(QMP),server=on,wait=off \
	  $(DRIVES) -kernel $(IMAGE) -initrd $(INITRAMFS) -append "$(CMDLINE)" || true

test: $(IMAGE) venv disks initramfs
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-model: venv
	$(PY) -m pytest tests/model $(PYTEST_ARGS)

test-guest: $(IMAGE) venv disks initramfs
	$(PY) -m pytest tests/guest $(PYTEST_ARGS)

bench: $(IMAGE) venv disks initramfs
	$(PY) bench/run.py

# Long runs (issue 7): the seeded soak over slub, slab and slob (kernel
# `check` and host page-table checks, data checksums through swap, PROT_NONE
# and COW), then 10,000 console fuzz lines; it ends with the summary and
# writes build/soak-frag.png and build/soak-memmap-BACKEND.png; then 2x RAM
# of shared anonymous memory through swap (tests/guest/test_swap.py); then
# user/loadtest's 32 processes for a minute (bench/loadtest.py, issue 15).
SOAK_OPS ?= 3000
SOAK_SEED ?= 1
SOAK_FUZZ ?= 10000
soak: $(IMAGE) venv initramfs disks
	@mkdir -p build
	$(PY) qemu/kpyqemu/soak.py --ops $(SOAK_OPS) --seed $(SOAK_SEED) --png-dir build --fuzz-lines $(SOAK_FUZZ)
	KPY_SHM_2X=1 $(PY) -m pytest tests/guest/test_swap.py -k 2x_ram_of_shared
	$(PY) bench/loadtest.py

image: $(IMAGE)

user: $(USER_BINS) $(MMBENCH_BIN) $(SELFTESTS_BINS) $(BADELF) mmbench-note

selftests: $(addprefix $(USER_DIR)/,$(SELFTESTS_PROGS))

disks: $(DISK) $(SWAP)

initramfs: $(INITRAMFS)

$(BUSYBOX_DIR)/.fetched: | $(STAMPS)/deps
	$(Q)user/fetch-busybox.sh build

# our own programs the root has besides BusyBox's applets (guest path=file)
ROOT_PROGS := usr/bin/vmstat=$(USER_DIR)/vmstat

$(INITRAMFS): $(BUSYBOX_DIR)/.fetched qemu/kpyqemu/initramfs.py $(USER_DIR)/vmstat
	$(Q)python3 qemu/kpyqemu/initramfs.py $@ --busybox $(BUSYBOX) $(addprefix --add ,$(ROOT_PROGS))

mmbench-note:
	@$(if $(MMBENCH_BIN),:,echo "mmbench: $(MMBENCH_SRC) not found (MMBENCH_SRC=...); building without it")

$(USER_BINS): $(USER_DIR)/%: user/%.c | $(STAMPS)/deps
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(USER_CC) $(USER_CFLAGS) -o $@ $<

$(USER_DIR)/mmbench: $(MMBENCH_SRC) | $(STAMPS)/deps
	@mkdir -p $(@D)
	@echo "  CC      $@ (from $(MMBENCH_SRC), unmodified)"
	$(Q)$(USER_CC) -static -O2 -o $@ $<

$(SELFTESTS_SRC)/.fetched: | $(STAMPS)/deps
	$(Q)user/fetch-selftests.sh build

# built unmodified from Linux's tree: only kselftest.h from ../ is needed
$(addprefix $(USER_DIR)/,$(SELFTESTS_PROGS)): $(USER_DIR)/%: $(SELFTESTS_SRC)/.fetched
	@mkdir -p $(@D)
	@echo "  CC      $@ (Linux $(SELFTESTS_VERSION) tools/testing/selftests/vm)"
	$(Q)$(USER_CC) $(USER_CFLAGS) -o $@ $(SELFTESTS_SRC)/tools/testing/selftests/vm/$*.c

$(BADELF): user/mkbadelf.sh user/hello.c $(USER_DIR)/hello
	@echo "  GEN     $(@D)"
	$(Q)user/mkbadelf.sh $(@D) $(USER_DIR)/hello user/hello.c $(USER_CC)

$(DISK): $(USER_BINS) $(MMBENCH_BIN) $(SELFTESTS_BINS) $(BADELF) qemu/kpyqemu/disks.py
	$(Q)python3 qemu/kpyqemu/disks.py data $@ --size-mb $(DISK_MB) --user-dir $(USER_DIR)

$(SWAP): | $(STAMPS)/deps
	$(Q)python3 qemu/kpyqemu/disks.py swap $@ --size-mb $(SWAP_MB)

# Always ask guest/Makefile: it knows when the image is up to date.
$(IMAGE): $(MPY_DIR)/.fetched FORCE
	$(MAKE) -C guest

$(MPY_DIR)/.fetched: | $(STAMPS)/deps
	guest/fetch-micropython.sh build

deps: $(STAMPS)/deps
$(STAMPS)/deps: Makefile
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

# (build/disk.img and build/swap.img stay: they hold what a user stored)
clean:
	rm -rf guest/build build/stamps $(USER_DIR)

FORCE:
