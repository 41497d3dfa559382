#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lint.layers_selftest: tests/check_layers.py against small fake trees in a temp dir.

A clean tree (the real layer shapes in miniature) must pass; each kind of violation is added to
a fresh copy of it alone and must be reported on its own line, naming the file and line, what is
included or linked and the rule; the exit status is 1 for a violation, 0 for the clean tree.

    python3 tests/test_check_layers.py [-v]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_layers  # noqa: E402

CLEAN = {
    "CMakeLists.txt": "add_library(shoal_warnings INTERFACE)\n"
                      "add_subdirectory(proto)\nadd_subdirectory(tests)\n",
    "proto/CMakeLists.txt": "add_library(shoal_proto STATIC codec.c)\n"
                            "target_link_libraries(shoal_proto PUBLIC PkgConfig::SODIUM\n"
                            "                      PRIVATE shoal_warnings)\n",
    "proto/codec.h": "#include <stdint.h>\n",
    "proto/codec.c": '#include "codec.h"\n#include <string.h>\n',
    "runtime/CMakeLists.txt": "add_library(shoal_runtime STATIC slog.c)\n"
                              "target_link_libraries(shoal_runtime PUBLIC shoal_proto\n"
                              "  Threads::Threads PRIVATE shoal_warnings)  # shoal_node here is "
                              "a comment\n",
    "runtime/slog.h": '#include "codec.h"\n',
    "runtime/slog.c": '#include "slog.h"\n#include <pthread.h>\n'
                      '/* #include "repo.h" in a comment does not count */\n'
                      '#if 0\n#include "frontend.h"\n#endif\n',
    "node/CMakeLists.txt": "add_library(shoal_node STATIC repo.c)\n"
                           "target_link_libraries(shoal_node PUBLIC shoal_runtime shoal_proto)\n",
    "node/repo.h": '#include "slog.h"\n#include "codec.h"\n',
    "node/repo.c": '#include "repo.h"\n#include <zmq.h>\n',
    "gateway/CMakeLists.txt": "add_library(shoal_gateway STATIC frontend.c)\n"
                              "target_link_libraries(shoal_gateway PUBLIC shoal_runtime)\n",
    "gateway/frontend.h": '#include "codec.h"\n',
    "gateway/frontend.c": '#include "frontend.h"\n#include "slog.h"\n',
    "cmd/CMakeLists.txt": "add_executable(shoal shoal.c)\n"
                          "target_link_libraries(shoal PRIVATE shoal_gateway shoal_node\n"
                          "                      shoal_runtime shoal_warnings)\n",
    "cmd/shoal.c": '#include "repo.h"\n#include "frontend.h"\n#include "slog.h"\n',
    # tests/ is outside the layers: anything goes, and its libraries are not the layers'.
    "tests/CMakeLists.txt": "add_library(shoal_fixture STATIC fx.c)\n"
                            "target_link_libraries(shoal_fixture PUBLIC shoal_node "
                            "shoal_gateway)\n",
    "tests/fx.h": '#include "repo.h"\n#include "frontend.h"\n',
    "tests/fx.c": '#include "fx.h"\n',
    # A build folder is never read.
    "build/x/proto/gen.c": '#include "repo.h"\n',
}


class CheckLayers(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="shoal-layers-")
        self.write(CLEAN)
        self.saved_waivers = dict(check_layers.WAIVERS)
        check_layers.WAIVERS.clear()

    def tearDown(self):
        check_layers.WAIVERS.clear()
        check_layers.WAIVERS.update(self.saved_waivers)
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, files):
        for rel, text in files.items():
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)

    def append(self, rel, text):
        with open(os.path.join(self.root, rel), "a") as f:
            f.write(text)

    def violations(self):
        return check_layers.check(self.root)[0]

    def one(self, *fragments):
        """Exactly one violation, containing every fragment."""
        v = self.violations()
        self.assertEqual(len(v), 1, "want one violation, got %r" % v)
        for frag in fragments:
            self.assertIn(frag, v[0])
        return v[0]

    # ---- the clean tree ----

    def test_clean_tree_passes(self):
        self.assertEqual(self.violations(), [])

    def test_clean_tree_exit_status_0(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_layers.py"), "--root",
                            self.root], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("layers ok", r.stdout)

    # ---- includes ----

    def test_lower_layer_includes_higher(self):
        self.append("runtime/slog.c", '#include "repo.h"\n')
        self.one("runtime/slog.c:7:", '"repo.h"', "node/repo.h", "higher layer",
                 "runtime/ (layer 1) may use only runtime/, proto/")

    def test_proto_includes_runtime(self):
        self.append("proto/codec.c", '#include "slog.h"\n')
        self.one("proto/codec.c:3:", '"slog.h"', "runtime/slog.h", "pure")

    def test_node_includes_gateway(self):
        self.append("node/repo.c", '#include "frontend.h"\n')
        self.one("node/repo.c:3:", '"frontend.h"', "node/ and gateway/ never use each other")

    def test_gateway_includes_node(self):
        self.write({"gateway/frontend.h": '#include "codec.h"\n#include "repo.h"\n'})
        self.one("gateway/frontend.h:2:", "gateway/ and node/ never use each other")

    def test_runtime_includes_cmd_header(self):
        self.write({"cmd/inproc.h": "\n"})
        self.append("runtime/slog.h", '#include "inproc.h"\n')
        self.one("runtime/slog.h:2:", "cmd/inproc.h", "higher layer")

    def test_angle_brackets_reach_a_layer_header_too(self):
        self.append("proto/codec.h", "#include <repo.h>\n")
        self.one("proto/codec.h:2:", "node/repo.h")

    def test_relative_path_is_resolved(self):
        self.append("runtime/slog.c", '#include "../gateway/frontend.h"\n')
        self.one("runtime/slog.c:7:", "gateway/frontend.h", "higher layer")

    def test_proto_forbidden_system_headers(self):
        for name in ("pthread.h", "sys/socket.h", "hiredis/hiredis.h", "zmq.h", "czmq.h"):
            with self.subTest(name=name):
                self.write({"proto/codec.c": '#include "codec.h"\n#include <%s>\n' % name})
                self.one("proto/codec.c:2:", "<%s>" % name, "proto/ is pure")

    def test_forbidden_system_headers_fine_above_proto(self):
        self.append("runtime/slog.c", "#include <sys/socket.h>\n#include <hiredis/hiredis.h>\n")
        self.assertEqual(self.violations(), [])

    def test_system_header_in_quotes(self):
        self.append("node/repo.c", '#include "stdio.h"\n')
        self.one("node/repo.c:3:", '"stdio.h"', "no header in the repo", "<stdio.h>")

    def test_header_outside_the_layers(self):
        self.append("node/repo.c", '#include "fx.h"\n')
        self.one("node/repo.c:3:", "tests/fx.h", "outside the layers")

    def test_ambiguous_header(self):
        self.write({"gateway/slog.h": "\n"})
        self.append("cmd/shoal.c", '#include "slog.h"\n')
        # Every "slog.h" outside runtime/ and gateway/ is now ambiguous, the new line too.
        v = self.violations()
        self.assertIn('cmd/shoal.c:4: includes "slog.h", which is ambiguous: runtime/slog.h, '
                      'gateway/slog.h', v)
        self.assertTrue(all("ambiguous" in x for x in v), v)

    def test_own_folder_first(self):
        # A header of the including file's own folder wins over a lower layer's namesake
        # (node/repo.h includes "codec.h"); elsewhere the name is ambiguous.
        self.write({"node/codec.h": "\n"})
        v = self.violations()
        self.assertTrue(v and all("ambiguous" in x for x in v), v)
        self.assertFalse([x for x in v if x.startswith("node/")], v)

    def test_comments_and_if0_do_not_count(self):
        self.append("runtime/slog.c", '// #include "repo.h"\n')
        self.assertEqual(self.violations(), [])

    def test_tests_folder_is_free(self):
        self.append("tests/fx.c", '#include "slog.h"\n#include "shoal.h"\n')
        self.assertEqual(self.violations(), [])

    # ---- CMake ----

    def test_cmake_lower_layer_links_higher(self):
        self.write({"runtime/CMakeLists.txt": "add_library(shoal_runtime STATIC slog.c)\n"
                                              "target_link_libraries(shoal_runtime PUBLIC\n"
                                              "    shoal_proto shoal_node)\n"})
        self.one("runtime/CMakeLists.txt:2:", "shoal_runtime links shoal_node",
                 "node/CMakeLists.txt", "higher layer")

    def test_cmake_node_links_gateway(self):
        self.append("node/CMakeLists.txt", "add_library(shoal_replica STATIC snap.c)\n"
                                           "target_link_libraries(shoal_replica PRIVATE\n"
                                           "  shoal_node shoal_gateway)\n")
        self.one("node/CMakeLists.txt:4:", "shoal_replica links shoal_gateway",
                 "never use each other")

    def test_cmake_proto_links_runtime(self):
        self.append("proto/CMakeLists.txt", "target_link_libraries(shoal_proto PUBLIC "
                                            "shoal_runtime)\n")
        self.one("proto/CMakeLists.txt:4:", "shoal_proto links shoal_runtime", "pure")

    def test_cmake_links_a_test_library(self):
        self.append("gateway/CMakeLists.txt", "target_link_libraries(shoal_gateway PUBLIC "
                                              "shoal_fixture)\n")
        self.one("gateway/CMakeLists.txt:3:", "shoal_fixture", "tests is outside the layers")

    def test_cmake_unknown_target(self):
        self.append("node/CMakeLists.txt", "target_link_libraries(shoal_node PUBLIC "
                                           "shoal_nowhere)\n")
        self.one("node/CMakeLists.txt:3:", "shoal_nowhere", "no add_library defines")

    def test_cmake_top_level_targets_serve_everyone(self):
        self.append("proto/CMakeLists.txt", "target_link_libraries(shoal_proto PRIVATE "
                                            "shoal_warnings)\n")
        self.assertEqual(self.violations(), [])

    # ---- waivers ----

    def test_waiver_silences_one_include_and_goes_stale(self):
        self.append("proto/codec.c", "#include <sys/socket.h>\n")
        check_layers.WAIVERS[("proto/codec.c", "sys/socket.h")] = "a reason"
        v, waived = check_layers.check(self.root)
        self.assertEqual((v, waived), ([], [("proto/codec.c", "sys/socket.h")]))
        self.write({"proto/codec.c": '#include "codec.h"\n'})
        self.one("proto/codec.c:", "stale")

    # ---- the command line ----

    def test_violation_exit_status_1_one_line_each(self):
        self.append("runtime/slog.c", '#include "repo.h"\n')
        self.append("node/repo.c", '#include "frontend.h"\n')
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_layers.py"), "--root",
                            self.root], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(any(x.startswith("runtime/slog.c:7: ") for x in lines), lines)
        self.assertTrue(any(x.startswith("node/repo.c:3: ") for x in lines), lines)
        self.assertIn("2 violations", lines[-1])

    def test_not_a_source_tree_exit_status_2(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_layers.py"), "--root",
                            os.path.join(self.root, "tests")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)

    def test_help_shows_the_layers(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_layers.py"), "--help"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for word in ("cmd/", "node/", "gateway/", "runtime/", "proto/", "layer 0"):
            self.assertIn(word, r.stdout)


if __name__ == "__main__":
    unittest.main()
