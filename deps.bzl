"""Offline dependencies of cexec for Bazel 4.2.3 (WORKSPACE mode, no network).

Bazel 4.2.3's DEFAULT.WORKSPACE.SUFFIX declares @rules_cc, @rules_java and
@remote_coverage_tools as http_archives, which cannot be fetched offline. A
repository declared under the same name earlier in the WORKSPACE takes
precedence, so cexec_offline_deps() declares local stubs of the three
(third_party/ of this repository) and @gtest (Debian's /usr/src/googletest).

Use from a consumer WORKSPACE:

    local_repository(name = "cexec", path = "/path/to/cexec")
    load("@cexec//:deps.bzl", "cexec_offline_deps")
    cexec_offline_deps()
"""

def _stub_repo_impl(rctx):
    # Symlink every top-level entry of the stub directory (located through a
    # label into this repository, so no filesystem path needs to be passed).
    src = rctx.path(rctx.attr.marker).dirname
    for entry in src.readdir():
        rctx.symlink(entry, entry.basename)

_stub_repo = repository_rule(
    implementation = _stub_repo_impl,
    attrs = {"marker": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def cexec_offline_deps(gtest = True, gtest_path = "/usr/src/googletest"):
    """Declares @rules_cc, @rules_java, @remote_coverage_tools (and @gtest) offline.

    Repositories already declared under these names are left alone.

    Args:
      gtest: also declare @gtest (needed only to build cexec's own tests).
      gtest_path: GoogleTest source tree (Debian package googletest).
    """
    _maybe(_stub_repo, "rules_cc", marker = Label("//third_party/rules_cc:WORKSPACE"))
    _maybe(_stub_repo, "rules_java", marker = Label("//third_party/rules_java:WORKSPACE"))
    _maybe(
        _stub_repo,
        "remote_coverage_tools",
        marker = Label("//third_party/remote_coverage_tools:WORKSPACE"),
    )
    if gtest:
        _maybe(
            native.new_local_repository,
            "gtest",
            path = gtest_path,
            build_file = str(Label("//third_party/gtest:gtest.BUILD")),
        )
