# SPDX-License-Identifier: MIT
# bridge_bench (peer_bridge.c): servers/bridge against a plain nng pair and
# a ZeroMQ pair, over loopback TCP and ipc, the same 32-byte message. Not a
# tests/bench/run peer (it does not use the harness, and its name is
# outside bench_*): it prints its own table. Included by CMakeLists.txt.
find_package(nng 1.5 CONFIG QUIET)
pkg_check_modules(BRIDGE_BENCH_ZMQ IMPORTED_TARGET libzmq)
if(TARGET butler::bridge AND TARGET nng::nng AND BRIDGE_BENCH_ZMQ_FOUND)
  add_executable(bridge_bench peer_bridge.c)
  butler_generate(bridge_bench ${CMAKE_CURRENT_SOURCE_DIR}/bridge_bench.json)
  target_compile_definitions(bridge_bench PRIVATE _GNU_SOURCE)
  target_link_libraries(bridge_bench PRIVATE butler::bridge nng::nng
                        PkgConfig::BRIDGE_BENCH_ZMQ Threads::Threads)
  add_dependencies(bench_all bridge_bench)
  if(NOT CMAKE_SOURCE_DIR STREQUAL CMAKE_CURRENT_SOURCE_DIR)
    add_test(NAME bench_bridge_quick COMMAND bridge_bench --quick)
    set_tests_properties(bench_bridge_quick PROPERTIES TIMEOUT 180
      LABELS bench FAIL_REGULAR_EXPRESSION "Sanitizer|runtime error: ")
  endif()
else()
  message(STATUS "bench: no butler::bridge, nng or libzmq: no bridge_bench")
endif()
