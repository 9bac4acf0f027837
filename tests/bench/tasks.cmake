# SPDX-License-Identifier: MIT
# tasks_bench (peer_tasks.c): servers/tasks against GThreadPool +
# g_main_context_invoke, both feeding a GLib main loop, in one process.
# Not a tests/bench/run peer (it does not use the harness, and its name is
# outside bench_*): it prints its own table. Included by CMakeLists.txt.
if(TARGET butler::tasks AND TARGET butler::glib)
  add_executable(tasks_bench peer_tasks.c)
  butler_generate(tasks_bench ${CMAKE_CURRENT_SOURCE_DIR}/tasks_bench.json)
  target_link_libraries(tasks_bench PRIVATE butler::tasks butler::glib m)
  add_dependencies(bench_all tasks_bench)
  if(NOT CMAKE_SOURCE_DIR STREQUAL CMAKE_CURRENT_SOURCE_DIR)
    add_test(NAME bench_tasks_quick COMMAND tasks_bench --quick)
    set_tests_properties(bench_tasks_quick PROPERTIES TIMEOUT 120
      LABELS bench FAIL_REGULAR_EXPRESSION "Sanitizer|runtime error: ")
  endif()
else()
  message(STATUS "bench: no butler::tasks or butler::glib, no tasks_bench")
endif()
