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
# g++ warns about fields left out of a designated initializer, which is how
# the tests write vtables (left-out fields are zero, as in C).
CX_TEST_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]
