# SPDX-License-Identifier: MIT
# man.cmake — the manual page renders, and man (groff) has nothing to say
# about it.
#
#   cmake -DMAN=<man> -DPAGE=<page.1> -P man.cmake
cmake_minimum_required(VERSION 3.20)
execute_process(COMMAND ${CMAKE_COMMAND} -E env MANWIDTH=80 MAN_KEEP_FORMATTING=
                        ${MAN} --warnings=all -l ${PAGE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "man -l ${PAGE}: exit ${rc}\n${err}")
endif()
if(NOT out MATCHES "NAME\n +butler-gen - generate C code")
  message(FATAL_ERROR "man -l ${PAGE}: no NAME section:\n${out}")
endif()
