# SPDX-License-Identifier: MIT
# subproject.cmake — butler as a subproject: configure and build
# tests/package/subproject (which add_subdirectory()s this source tree) in
# a scratch directory, then run its two programs.
#
#   cmake -DSRC=<source tree> -DWORK=<scratch> -DGENERATOR=<generator>
#         -P subproject.cmake
cmake_minimum_required(VERSION 3.20)
foreach(var SRC WORK GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "subproject.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
run(${CMAKE_COMMAND} -S ${SRC}/tests/package/subproject -B ${WORK}
    -G ${GENERATOR} -DBUTLER_SOURCE_DIR=${SRC} -DBUTLER_WERROR=ON)
if(last_err MATCHES "Criterion|CMake Warning")
  message(FATAL_ERROR "configuring the subproject warned:\n${last_err}")
endif()
run(${CMAKE_COMMAND} --build ${WORK} -j 2)
run(${WORK}/subproject_main)
if(NOT last_out MATCHES "^butler [0-9]+\\.[0-9]+\\.[0-9]+\ninbox is full\n$")
  message(FATAL_ERROR "subproject_main: unexpected output:\n${last_out}")
endif()
run(${WORK}/subproject_ping_pong)
if(NOT last_out MATCHES "main: rally over after 10 hits")
  message(FATAL_ERROR "subproject_ping_pong: unexpected output:\n${last_out}")
endif()
