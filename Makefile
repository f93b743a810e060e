# SPDX-License-Identifier: GPL-2.0
#
# pcb: one entry point for building, testing and installing.
#
#   make              module for the default kernel, libpcb, tools, selftests
#   make check        every supported kernel: build, boot in a VM, run the
#                     selftests as root and as uid 65534; then the debug
#                     kernel (KASAN, lockdep, UBSAN, kmemleak) with the
#                     DEBUG_TESTS; last line "N passed, M failed"
#   make check-debug  every selftest on the debug kernel only
#   make demo         load the module (here, or in a VM) and run pcb-demo
#   make fuzz         the seeded fuzzer in the VM, 30 minutes per kernel
#   make stress       the 10-minute stress run per kernel, with its checker
#   make install      libpcb, headers, pcbctl, the udev rule
#   make dkms-install the module sources under DKMS
#
# The module is built out of tree once per kernel in build/KVER/, a tree of
# symlinks to Kbuild, kmod/ and uapi/, so that kernels never share objects.
# KVER= or KDIR= pick the kernel for `make module`; the default is the running
# kernel when its headers are installed (a real host), else the newest
# supported kernel installed (a build machine whose own kernel has none).

VERSION		:= 0.1.0

PREFIX		?= /usr/local
BINDIR		?= $(PREFIX)/bin
LIBDIR		?= $(PREFIX)/lib
INCLUDEDIR	?= $(PREFIX)/include
UDEVRULESDIR	?= /etc/udev/rules.d
DESTDIR		?=
DKMS_SRC	:= /usr/src/pcb-$(VERSION)

# A VM that has not finished after this many seconds is killed (a failure).
VM_TIMEOUT	?= 900

# The debug kernel (tools/vm/debug-kernel) runs 5 to 10 times slower than
# Debian's in the VM.  make check runs DEBUG_TESTS there (both as root and
# as uid 65534; empty runs them all) with fuzz_test for DEBUG_FUZZ_SECONDS;
# make check-debug runs every selftest, its VM killed after DEBUG_VM_TIMEOUT
# seconds.
DEBUG_TESTS		?= attack_test hostile_test fuzz_test
DEBUG_FUZZ_SECONDS	?= 30
DEBUG_VM_TIMEOUT	?= 5400

# Supported kernels installed here (6.1.x, 6.12.x with headers and an image).
KERNELS		:= $(shell tools/vm/kernels)
RUNNING		:= $(shell uname -r)

ifdef KDIR
# The release the headers were built for, as the module's vermagic names it
# (Debian's include/config/kernel.release says 6.1.123, not 6.1.0-NN-amd64).
KVER		:= $(or $(KVER),$(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' \
			   $(KDIR)/include/generated/utsrelease.h 2>/dev/null))
else
ifndef KVER
KVER		:= $(if $(wildcard /lib/modules/$(RUNNING)/build/Makefile),$(RUNNING),$(lastword $(KERNELS)))
endif
KDIR		:= /lib/modules/$(KVER)/build
endif

CHECKPATCH	:= build/checkpatch/checkpatch.pl
KSFT_HEADERS	:= build/kselftest/kselftest.h build/kselftest/kselftest_harness.h
CHECKPATCH_FILES := $(CHECKPATCH) build/checkpatch/spelling.txt \
		    build/checkpatch/const_structs.checkpatch
LINUX_SRC_TAR	?= $(firstword $(wildcard /usr/src/linux-source-6.1.tar.*))
TOOL_DIRS	:= $(filter-out tools/vm,$(patsubst %/Makefile,%,$(wildcard tools/*/Makefile)))
STYLE_FILES	:= $(wildcard kmod/*.c kmod/*.h) uapi/linux/pcb.h

export VM_TIMEOUT DEBUG_TESTS DEBUG_FUZZ_SECONDS DEBUG_VM_TIMEOUT

all: module lib tools selftests

# --- the module -------------------------------------------------------------

# $(call link-tree,DIR): make DIR a tree of relative symlinks to Kbuild, every
# file under kmod/ and uapi/, dropping links whose source has gone.
define link-tree
	@set -e; dir=$(1); up=$$(echo "$$dir/" | sed 's|[^/]*/|../|g'); \
	mkdir -p "$$dir"; \
	ln -sfn "$${up}Kbuild" "$$dir/Kbuild"; \
	ln -sfn "$${up}uapi" "$$dir/uapi"; \
	if [ -d "$$dir/kmod" ]; then \
		find "$$dir/kmod" -type l | while read -r l; do \
			[ -e "$$l" ] || rm -f "$$l"; done; \
	fi; \
	find kmod -type f ! -name '*.o' ! -name '.*' | while read -r f; do \
		d=$$(dirname "$$f"); mkdir -p "$$dir/$$d"; \
		back=$$(echo "$$d/" | sed 's|[^/]*/|../|g'); \
		ln -sfn "$$back$$up$$f" "$$dir/$$f"; \
	done
endef

# $(call kbuild,KVER,KDIR,DIR,ARGS)
define kbuild
	$(call link-tree,$(3))
	+$(MAKE) -C $(2) M=$(CURDIR)/$(3) $(4) modules
endef

module:
	@[ -n "$(KVER)" ] || { echo "no supported kernel headers installed: run 'make deps'" >&2; exit 1; }
	@[ -f "$(KDIR)/Makefile" ] || { echo "$(KDIR): no kernel headers (run 'make deps')" >&2; exit 1; }
	$(call kbuild,$(KVER),$(KDIR),build/$(KVER))

modules-all: $(addprefix module-,$(KERNELS))
	@[ -n "$(KERNELS)" ] || { echo "no supported kernel installed: run 'make deps'" >&2; exit 1; }

module-%:
	$(call kbuild,$*,/lib/modules/$*/build,build/$*)

# pcb.ko for the debug kernel, in build/debug/.  tools/vm/debug-kernel
# builds that kernel first when this machine has not got it yet (10 to 20
# minutes on 2 cores, then cached outside the checkout).  Its configuration
# has CONFIG_WERROR: a frame over Kbuild's -Wframe-larger-than fails.
module-debug:
	$(call link-tree,build/debug)
	+@dir=$$(tools/vm/debug-kernel) && \
		$(MAKE) -C "$$dir/obj" M=$(CURDIR)/build/debug modules

# --- userspace --------------------------------------------------------------

lib:
	$(MAKE) -C lib PKG_VERSION=$(VERSION)

tools: lib
	@[ -n "$(TOOL_DIRS)" ] || { echo "no tools found" >&2; exit 1; }
	@set -e; for d in $(TOOL_DIRS); do $(MAKE) -C $$d; done

selftests: lib $(KSFT_HEADERS)
	$(MAKE) -C selftests

kselftest-headers: $(KSFT_HEADERS)

# One pass over the (large) kernel source tarball extracts both the kselftest
# headers and checkpatch; nothing from it is kept in the repository.
$(KSFT_HEADERS) $(CHECKPATCH_FILES) &:
	@[ -n "$(LINUX_SRC_TAR)" ] || { echo "linux-source-6.1 is not installed: run 'make deps'" >&2; exit 1; }
	@echo "  EXTRACT $(LINUX_SRC_TAR): kselftest headers, checkpatch"
	@rm -rf build/linux-src.tmp && mkdir -p build/linux-src.tmp build/kselftest build/checkpatch
	@tar -xf $(LINUX_SRC_TAR) -C build/linux-src.tmp --occurrence=1 \
		linux-source-6.1/tools/testing/selftests/kselftest.h \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	@cp build/linux-src.tmp/linux-source-6.1/tools/testing/selftests/kselftest*.h build/kselftest/
	@cp build/linux-src.tmp/linux-source-6.1/scripts/checkpatch.pl \
	    build/linux-src.tmp/linux-source-6.1/scripts/spelling.txt \
	    build/linux-src.tmp/linux-source-6.1/scripts/const_structs.checkpatch build/checkpatch/
	@touch $(KSFT_HEADERS) $(CHECKPATCH_FILES)
	@rm -rf build/linux-src.tmp

# --- checks -----------------------------------------------------------------

deps:
	tools/deps.sh

check:
	@MAKE="$(MAKE)" tools/vm/check-all

check-debug:
	@MAKE="$(MAKE)" tools/vm/check-all --debug

demo:
	@MAKE="$(MAKE)" tools/vm/demo

# System calls per message and rates of each publish path, in the VM for
# every supported kernel (bench/PUBLISH-MODES.md says what they mean).
publish-modes: modules-all tools
	tools/pubmodes/run.sh

# The benchmark suite (bench/README.md): pcb-bench in the VM for every
# supported kernel, and on the host when it can load the module, with
# counts per message under bpftrace; writes bench/results.json and plots.
bench: deps modules-all lib tools
	tools/bench/run

# The long hardening runs, in the VM for every supported kernel: the seeded
# fuzzer (FUZZ_MINUTES per kernel, default 30) and the stress run with its
# exactly-once checker (STRESS_MINUTES per kernel, default 10).
fuzz: deps modules-all lib tools selftests
	tools/fuzz/run

stress: deps modules-all lib tools selftests
	tools/stress/run

# checkpatch leaves a CamelCase cache (.checkpatch-camelcase.*) behind.
style: $(CHECKPATCH_FILES)
	@rc=0; $(CHECKPATCH) --strict --no-tree --show-types -f $(STYLE_FILES) || rc=$$?; \
	rm -f .checkpatch-camelcase.*; exit $$rc

# sparse over every file (C=2 checks files that are already built too) and
# W=1 in a scratch tree that is rebuilt from nothing, so that a warning can
# never hide behind an up-to-date object.  Any warning fails.
sparse: $(addprefix sparse-,$(KERNELS))
w1: $(addprefix w1-,$(KERNELS))

sparse-%:
	$(call link-tree,build/$*)
	@echo "  SPARSE  $*"
	@$(MAKE) -s -C /lib/modules/$*/build M=$(CURDIR)/build/$* C=2 modules \
		>build/$*/sparse.log 2>&1 || { cat build/$*/sparse.log; exit 1; }
	@if grep -E 'warning:|error:' build/$*/sparse.log; then \
		echo "sparse: warnings for $* (build/$*/sparse.log)" >&2; exit 1; fi

w1-%:
	@rm -rf build/w1/$*
	$(call link-tree,build/w1/$*)
	@echo "  W=1     $*"
	@$(MAKE) -s -C /lib/modules/$*/build M=$(CURDIR)/build/w1/$* W=1 modules \
		>build/w1/$*.log 2>&1 || { cat build/w1/$*.log; exit 1; }
	@if grep -iE 'warning:|error:' build/w1/$*.log; then \
		echo "W=1: warnings for $* (build/w1/$*.log)" >&2; exit 1; fi

# --- installing -------------------------------------------------------------

install: lib tools
	$(MAKE) -C lib install PKG_VERSION=$(VERSION) PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) \
		INCLUDEDIR=$(INCLUDEDIR) DESTDIR=$(DESTDIR)
	install -D -m 755 tools/pcbctl/pcbctl $(DESTDIR)$(BINDIR)/pcbctl
	install -D -m 755 tools/pcbtop/pcbtop $(DESTDIR)$(BINDIR)/pcbtop
	install -d $(DESTDIR)$(PREFIX)/share/pcb/bpftrace
	install -m 755 tools/bpftrace/*.bt $(DESTDIR)$(PREFIX)/share/pcb/bpftrace/
	install -D -m 644 packaging/99-pcb.rules $(DESTDIR)$(UDEVRULESDIR)/99-pcb.rules
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		getent group pcb >/dev/null || groupadd --system pcb; \
		ldconfig; \
		if command -v udevadm >/dev/null && [ -d /run/udev ]; then \
			udevadm control --reload-rules && \
			udevadm trigger --sysname-match=pcb || true; \
		fi; \
	fi

uninstall:
	$(MAKE) -C lib uninstall PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) \
		INCLUDEDIR=$(INCLUDEDIR) DESTDIR=$(DESTDIR)
	rm -f $(DESTDIR)$(BINDIR)/pcbctl $(DESTDIR)$(BINDIR)/pcbtop \
		$(DESTDIR)$(UDEVRULESDIR)/99-pcb.rules
	rm -rf $(DESTDIR)$(PREFIX)/share/pcb

# Kernels to build for under DKMS: the running one when its headers are
# installed, otherwise every supported kernel installed.
DKMS_KERNELS	?= $(if $(wildcard /lib/modules/$(RUNNING)/build/Makefile),$(RUNNING),$(KERNELS))

dkms-install:
	@[ "$$(id -u)" = 0 ] || { echo "dkms-install needs root" >&2; exit 1; }
	rm -rf $(DKMS_SRC)
	install -d $(DKMS_SRC)
	cp -R Kbuild uapi $(DKMS_SRC)/
	find kmod -type f ! -name '*.o' ! -name '.*' | \
		while read -r f; do install -D -m 644 "$$f" "$(DKMS_SRC)/$$f"; done
	sed 's/^PACKAGE_VERSION=.*/PACKAGE_VERSION="$(VERSION)"/' dkms.conf >$(DKMS_SRC)/dkms.conf
	-dkms remove pcb/$(VERSION) --all >/dev/null 2>&1
	dkms add pcb/$(VERSION)
	@set -e; for k in $(DKMS_KERNELS); do \
		echo "dkms build/install pcb/$(VERSION) for $$k"; \
		dkms build pcb/$(VERSION) -k $$k; \
		dkms install pcb/$(VERSION) -k $$k; \
	done

dkms-uninstall:
	-dkms remove pcb/$(VERSION) --all
	rm -rf $(DKMS_SRC)

# --- cleaning ---------------------------------------------------------------

# build/kselftest and build/checkpatch are kept: extracting them again takes
# a while and they never change.  distclean removes them too.
clean:
	-$(MAKE) -C lib clean
	-$(MAKE) -C selftests clean
	-@for d in $(TOOL_DIRS); do $(MAKE) -C $$d clean; done
	find build -mindepth 1 -maxdepth 1 ! -name kselftest ! -name checkpatch \
		-exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf build

.PHONY: all module modules-all lib tools selftests kselftest-headers deps \
	publish-modes bench fuzz stress \
	check check-debug module-debug demo style sparse w1 install uninstall \
	dkms-install dkms-uninstall clean distclean
