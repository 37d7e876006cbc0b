#!/usr/bin/env bash
# Fuzzes agentd's parsers of outside input with libFuzzer for SECONDS (default 60).
#
# Builds agentd-fuzz with coverage instrumentation and AddressSanitizer (`-sanitize=fuzzer,address`,
# `-D LIBFUZZER`) into .build-fuzz, then runs it in one process over the seed corpus Tests/Fuzz/corpus,
# which it only reads: the inputs it finds go to .build-fuzz/corpus (kept between runs; delete it to
# start over). It stops at the first crash, keeps that input in .build-fuzz/crashes/ and fails; once the
# bug is fixed, add the input to Tests/Fuzz/corpus (a regression the test suite replays).
#
#   scripts/fuzz.sh 20                                   # CI's short run
#   scripts/fuzz.sh 620                                  # a long run
#   .build-fuzz/release/agentd-fuzz FILE                 # runs one input again (a crash, say)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]: SECONDS must be a whole number above 0, got '$seconds'" >&2
  exit 2
fi
source scripts/deps.sh
scratch=.build-fuzz
# lld from the Swift toolchain: gold links it too, but warns about ASan's symbols.
swift build -c release --scratch-path "$scratch" --product agentd-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
mkdir -p "$scratch/corpus" "$scratch/crashes"
# A trap is libFuzzer's to report (with AddressSanitizer's stack trace): Swift's own crash handler
# would first read the crashed process's memory, which AddressSanitizer reports as a crash of its own.
export SWIFT_BACKTRACE=enable=no
status=0
"$scratch/release/agentd-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
  -dict=Tests/Fuzz/fuzz.dict -artifact_prefix="$scratch/crashes/" "$scratch/corpus" Tests/Fuzz/corpus || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz.sh: agentd-fuzz failed (exit $status); the input is in $scratch/crashes/ (named above)." >&2
  echo "Fix the parser, then add the input to Tests/Fuzz/corpus (its first byte picks the parser)." >&2
fi
exit "$status"
