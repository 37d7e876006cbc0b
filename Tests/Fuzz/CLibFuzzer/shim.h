#ifndef AGENTD_CLIBFUZZER_SHIM_H
#define AGENTD_CLIBFUZZER_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, FuzzerInterface.h): parses libFuzzer's flags from argv and fuzzes
/// `callback`. Declared only: `-sanitize=fuzzer` links libFuzzer, and only the `LIBFUZZER` build of
/// agentd-fuzz calls it, so the normal build needs no libFuzzer at all.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
