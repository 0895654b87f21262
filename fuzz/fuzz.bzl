"""cx_fuzz_harness: one harness as a libFuzzer binary and a corpus replay test."""

load("//:cexec_copts.bzl", "CX_COPTS")

def cx_fuzz_harness(name, harness, deps, sweep = False, replay_size = "small"):
    """Declares //fuzz:<name> (libFuzzer, --config=fuzz only) and //fuzz:<name>_replay.

    Args:
      name: the harness name; its corpus is fuzz/corpus/<name>/.
      harness: the C function, int harness(const uint8_t *, size_t).
      deps: the cc_library holding the harness.
      sweep: the replay also re-runs every input failing each allocation.
      replay_size: test size of the replay test.
    """

    # The fuzzer: clang + libFuzzer. Incompatible (skipped by //...) unless
    # built with --config=fuzz, which defines cexec_fuzz=1.
    native.cc_binary(
        name = name,
        srcs = ["libfuzzer_main.c"],
        copts = CX_COPTS + ["-fsanitize=fuzzer"],
        linkopts = ["-fsanitize=fuzzer"],
        local_defines = ["CX_FUZZ_HARNESS=" + harness],
        deps = deps,
        target_compatible_with = select({
            ":fuzz_build": [],
            "//conditions:default": [":never"],
        }),
    )

    # The regression test: every corpus file through the harness, any
    # compiler, no libFuzzer.
    native.cc_test(
        name = name + "_replay",
        size = replay_size,
        srcs = ["replay_main.c"],
        copts = CX_COPTS,
        local_defines = [
            "CX_FUZZ_HARNESS=" + harness,
            "CX_FUZZ_CORPUS=fuzz/corpus/" + name,
        ] + (["CX_FUZZ_SWEEP=1"] if sweep else []),
        data = native.glob(["corpus/" + name + "/**"]),
        deps = deps,
    )
