# netsurg build.  `make demo` and `make test` are the two entry points
# (see README.md); both first run scripts/install-deps.sh.

BUILD ?= build
CC ?= gcc
WERROR ?= 1
OPT ?= -O2
SANITIZE ?=

CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -g $(OPT) -fopenmp -fPIC \
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
CFLAGS_BASE += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif
CPPFLAGS += -I. -Iinclude -Isrc -I$(BUILD)/gen -I/usr/include/x86_64-linux-gnu/openblas-pthread \
            -I/usr/include/hdf5/serial
OPENBLAS_LIB := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so) -lopenblas)
LDLIBS += -lprotobuf-c $(OPENBLAS_LIB) -ljpeg -lpng -lz -llmdb -lleveldb -lhdf5_serial -lm
LDFLAGS += -fopenmp

GEN_SRC := $(BUILD)/gen/caffe.pb-c.c
GEN_HDR := $(BUILD)/gen/caffe.pb-c.h
ONNX_GEN_SRC := $(BUILD)/gen/onnx.pb-c.c
ONNX_GEN_HDR := $(BUILD)/gen/onnx.pb-c.h
LIB_SRC := $(sort $(shell find src -name '*.c'))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/caffe.pb-c.o \
  $(BUILD)/obj/gen/onnx.pb-c.o
LIB := $(BUILD)/libnetsurg.a
# The shared library: soname libnetsurg.so.$(SO_MAJOR); it exports only what
# include/netsurg.h declares (see the visibility pragma there).  The CLI,
# tests and examples link the static library, which also holds the
# internal functions the unit tests call.
VERSION := 0.1.0
SO_MAJOR := $(firstword $(subst ., ,$(VERSION)))
SO := $(BUILD)/libnetsurg.so
SO_REAL := $(SO).$(VERSION)
SO_LDFLAGS := -shared -Wl,-soname,libnetsurg.so.$(SO_MAJOR)
# Every dependency named in the library (sanitizer runtimes come with the
# program instead).
ifeq ($(SANITIZE),)
SO_LDFLAGS += -Wl,--no-undefined
endif
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CLI := $(BUILD)/netsurg
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all install python FORCE deps deps-ort demo train-fmnist test test-unit test-slow test-asan fuzz fuzz-smoke bench bench-peers bench-stream bench-probe bench-kernels clean format

all: $(CLI) $(EXAMPLE_BIN) $(SO)

deps:
	@scripts/install-deps.sh test

# ONNX Runtime (npm onnxruntime-node) for test_onnx_export and bench-peers,
# in bench/peers/node_modules; its install script (extra downloads) is not run.
deps-ort:
	@cd bench/peers && npm install --ignore-scripts --no-audit --no-fund --no-package-lock

# One protoc-c run writes both files (a grouped target: under -j two runs
# could race and leave a truncated object).
$(GEN_SRC) $(GEN_HDR) &: src/format/caffe.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Isrc/format src/format/caffe.proto

# ONNX's schema as we write it (src/export/onnx.proto), for the exporter.
$(ONNX_GEN_SRC) $(ONNX_GEN_HDR) &: src/export/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Isrc/export src/export/onnx.proto

# Objects are rebuilt when the compile flags change (a new flag such as
# the library's visibility must not leave stale objects behind).
FLAGS_STAMP := $(BUILD)/obj/compile-flags
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS_BASE) $(CFLAGS) library: -fvisibility=hidden
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' >$@
FORCE:

$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wshadow -Wstrict-prototypes,$(CFLAGS_BASE)) $(VISIBILITY) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(GEN_HDR) $(ONNX_GEN_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_BASE) $(VISIBILITY) $(CFLAGS) -MMD -MP -c $< -o $@

# Library objects keep their symbols to themselves unless the public header
# says otherwise.
$(LIB_OBJ): VISIBILITY := -fvisibility=hidden

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SO_REAL): $(LIB_OBJ)
	$(CC) $(SO_LDFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(SO): $(SO_REAL)
	ln -sf $(notdir $(SO_REAL)) $(SO).$(SO_MAJOR)
	ln -sf libnetsurg.so.$(SO_MAJOR) $@

# make install PREFIX=/usr/local [DESTDIR=staging]: the header, both
# libraries and netsurg.pc for pkg-config.
# The Python package (python/): the library copied next to it, then pip
# installs it offline (no build isolation: Debian's python3-setuptools) into
# PY_TARGET, a folder for PYTHONPATH (default $(BUILD)/python); PY_TARGET=
# (empty) installs into the running environment, e.g. a venv.
PYTHON ?= /usr/bin/python3
PY_TARGET ?= $(BUILD)/python
# caffe_pb2 comes from our caffe.proto without its protobuf-c options (they
# only rename C struct members) and so without their import.
PY_PROTO := python/netsurg/caffe/proto
python: $(SO) $(PY_PROTO)/caffe_pb2.py
	cp $(SO_REAL) python/netsurg/libnetsurg.so
	$(PYTHON) -m pip install --no-build-isolation --no-deps --no-index --upgrade \
	  $(if $(PY_TARGET),--target $(PY_TARGET)) ./python

# Also made alone by the Python tests that need caffe_pb2 (NetSpec).
$(PY_PROTO)/caffe_pb2.py: src/format/caffe.proto
	@mkdir -p $(BUILD)/pyproto
	grep -v -e 'import "protobuf-c/' -e 'option (pb_c_msg)' src/format/caffe.proto \
	  >$(BUILD)/pyproto/caffe.proto
	protoc --python_out=$(PY_PROTO) -I$(BUILD)/pyproto $(BUILD)/pyproto/caffe.proto

install: $(LIB) $(SO)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/netsurg.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SO_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO_REAL)) $(DESTDIR)$(LIBDIR)/libnetsurg.so.$(SO_MAJOR)
	ln -sf libnetsurg.so.$(SO_MAJOR) $(DESTDIR)$(LIBDIR)/libnetsurg.so
	sed -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|-fopenmp $(LDLIBS)|' \
	  netsurg.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/netsurg.pc

CLI_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard tools/*.c)))

$(CLI): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# test_json_number checks a CLI helper (tools/json_number.c) directly.
$(BUILD)/tests/test_json_number: $(BUILD)/obj/tools/json_number.o
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -lcmocka $(LDLIBS) -o $@

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

# Retrains the demo's Fashion-MNIST LeNet (models/fmnist_lenet) from scratch.
train-fmnist: deps
	@$(MAKE) --no-print-directory all
	@scripts/train-fmnist.sh $(BUILD)

# Unit tests (cmocka), CLI tests and the OpenCV oracle tests; the runner
# prints the totals.  First, the include rules between the tiers of src/.
test: deps
	@scripts/check-includes.sh
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@scripts/run-tests.sh $(BUILD)

# The checks too slow for make test (tests/slow/test_*.py); CI runs both.
test-slow: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-tests.sh --slow $(BUILD)

test-asan: deps
	@$(MAKE) --no-print-directory test-unit BUILD=build-asan OPT=-O1 SANITIZE=address,undefined

test-unit:
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@NS_SKIP_SLOW=1 scripts/run-tests.sh $(BUILD)

fuzz:
	@scripts/install-deps.sh fuzz
	@scripts/fuzz.sh build

fuzz-smoke:
	@scripts/install-deps.sh fuzz
	@scripts/fuzz.sh smoke

bench: all
	@scripts/bench.sh $(BUILD)

bench-peers: all
	@scripts/bench-peers.sh $(BUILD)

# classify --list end to end against the forward pass alone (bench/stream.py).
bench-stream: all
	@/usr/bin/python3 bench/stream.py --build $(BUILD)

# Memory bandwidth, FMA peak and Winograd's accuracy (bench/probe.c).
bench-probe: $(BUILD)/bench/probe
	@$(BUILD)/bench/probe

$(BUILD)/bench/probe: $(BUILD)/obj/bench/probe.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The forward kernels alone on the zoo's shapes (bench/kernels.c).
bench-kernels: $(BUILD)/bench/kernels
	@$(BUILD)/bench/kernels

$(BUILD)/bench/kernels: $(BUILD)/obj/bench/kernels.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

format:
	clang-format -i $(shell find include src tools tests examples bench fuzz -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
