"""Compiler flags shared by every cexec target."""

# Our own code is warning-free on gcc 12 and clang 14; keep it that way.
CX_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-std=c11",
]

# For the C++ GoogleTest files.
CX_TEST_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
]
