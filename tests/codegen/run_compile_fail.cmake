# SPDX-License-Identifier: MIT
# run_compile_fail.cmake — a mistake the generated API turns into a compile
# error. compile_fail/<case>.c is valid C with its mistake under #ifdef
# BREAK, and says on a line of its own which error it expects:
#
#   /* expect: <CMake regular expression matched against the compiler's stderr> */
#
# Compiled without BREAK it must build cleanly with -Wall -Wextra -Werror
# (so the mistake, nothing else, is what fails); compiled with -DBREAK and
# no warning flags at all it must fail, with that message: a hard error in
# any C11 compiler, not a warning that a build may ignore.
#
#   cmake -DCC=<compiler> -DSRC=<case.c> -DINCLUDES=<dir;dir> -P run_compile_fail.cmake
foreach(var CC SRC INCLUDES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_compile_fail.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS ${SRC} expect REGEX "^/\\* expect: .* \\*/$")
list(LENGTH expect n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "${SRC}: needs exactly one '/* expect: ... */' line")
endif()
string(REGEX REPLACE "^/\\* expect: (.*) \\*/$" "\\1" expect "${expect}")
set(inc "")
foreach(dir IN LISTS INCLUDES)
  list(APPEND inc -I${dir})
endforeach()

execute_process(
  COMMAND ${CC} -std=c11 -fsyntax-only -Wall -Wextra -Wpedantic -Werror
          ${inc} ${SRC}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SRC} does not compile even without BREAK:\n${err}")
endif()

execute_process(
  COMMAND ${CC} -std=c11 -fsyntax-only -DBREAK ${inc} ${SRC}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SRC} compiles with -DBREAK; expected an error "
                      "matching '${expect}'. Compiler said:\n${err}")
endif()
if(NOT err MATCHES "${expect}")
  message(FATAL_ERROR "${SRC} fails with -DBREAK, but not with an error "
                      "matching '${expect}':\n${err}")
endif()
message(STATUS "${SRC}: error as expected")
