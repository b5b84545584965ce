#!/bin/bash
# test.sh: from a fresh clone on Debian 12, as root: installs the
# dependencies, builds, and runs the whole test suite (test/run-tests).
# This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

bash scripts/deps.sh
if [ ! -f Makefile ]; then
	autoreconf -fi
	./configure
fi
make -j2
exec bash test/run-tests "$@"
