# postern - the two README commands, plus bench. Every target first installs
# what is missing (Debian 12, apt-get), so a fresh machine needs nothing else.

PKGS := gcc meson ninja-build pkg-config libevent-dev libssl-dev \
	libsodium-dev libcrypt-dev libcmocka-dev python3 python3-pytest \
	python3-pytest-timeout swaks libnet-ssleay-perl nmap \
	clang libclang-rt-14-dev postfix openssl fail2ban libsasl2-modules \
	libunbound-dev dns-root-data nsd ldnsutils libseccomp-dev \
	liblmdb-dev prometheus python3-prometheus-client python3-yaml curl
BENCH_PKGS := dovecot-core
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON := /usr/bin/python3
FUZZ_SECONDS ?= 20

.PHONY: all deps deps-bench build run test unit integration fuzz bench clean

all: build

deps:
	@missing=$$(for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		echo "postfix postfix/main_mailer_type select No configuration" \
			| $(SUDO) debconf-set-selections; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
			--no-install-recommends $$missing; \
	fi

# Only the benchmark needs Dovecot (SASL for the Postfix it compares with).
deps-bench: deps
	@$(MAKE) --no-print-directory deps PKGS="$(BENCH_PKGS)"

build/build.ninja:
	meson setup build -Dbuildtype=release -Db_ndebug=false

build: deps build/build.ninja
	meson compile -C build

# The development server: embedded configuration, state under ./var.
run: build
	./build/postern serve -f

build-test/build.ninja:
	meson setup build-test -Dbuildtype=debug -Dtest_hooks=true \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debugoptimized \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all

unit: deps build-test/build.ninja
	meson compile -C build-test
	meson test -C build-test --print-errorlogs

integration: unit
	POSTERN_BIN=$(CURDIR)/build-test/postern $(PYTHON) -m pytest -q \
		-p no:cacheprovider --timeout=300 tests/integration

fuzz: deps build-fuzz/build.ninja
	meson compile -C build-fuzz
	tests/fuzz/run build-fuzz $(FUZZ_SECONDS)

test: build unit integration fuzz

bench: deps-bench build
	bench/run

clean:
	rm -rf build build-test build-fuzz
