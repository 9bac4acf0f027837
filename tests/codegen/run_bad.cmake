# SPDX-License-Identifier: MIT
# run_bad.cmake — one negative golden: run butler-gen on bad/<CASE>.json and
# compare its stderr, in full, with bad/<CASE>.err.
#
#   cmake -DGEN=<butler-gen> -DDIR=<tests/codegen> -DCASE=<name>
#         -DOUT=<scratch dir> -P run_bad.cmake
#
# The spec is passed as the relative path bad/<CASE>.json from DIR, so the
# goldens hold the same paths on every machine; bad/<CASE>.args, if there
# is one, holds more arguments for butler-gen, one per line. A case with an error must
# exit 1 and write nothing into --out-dir; a case with only warnings must
# exit 0. BUTLER_UPDATE_GOLDEN=1 in the environment rewrites the golden
# instead (review the diff before committing it).
foreach(var GEN DIR CASE OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_bad.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${OUT})
set(args "")
if(EXISTS ${DIR}/bad/${CASE}.args)
  file(STRINGS ${DIR}/bad/${CASE}.args args)
endif()
execute_process(
  COMMAND ${GEN} --out-dir ${OUT}/gen ${args} bad/${CASE}.json
  WORKING_DIRECTORY ${DIR}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)

set(golden ${DIR}/bad/${CASE}.err)
if("$ENV{BUTLER_UPDATE_GOLDEN}" STREQUAL "1")
  file(WRITE ${golden} "${err}")
  message(STATUS "updated ${golden}")
  return()
endif()
if(NOT EXISTS ${golden})
  message(FATAL_ERROR "no golden ${golden}; butler-gen said:\n${err}")
endif()
file(READ ${golden} want)
if(NOT err STREQUAL want)
  file(MAKE_DIRECTORY ${OUT})
  file(WRITE ${OUT}/got.err "${err}")
  execute_process(COMMAND diff -u ${golden} ${OUT}/got.err
                  OUTPUT_VARIABLE diff)
  message(FATAL_ERROR "stderr differs from ${golden} "
                      "(- expected, + got):\n${diff}")
endif()

string(FIND "${want}" ": error: " first_error)
if(first_error GREATER_EQUAL 0)
  if(NOT rc EQUAL 1)
    message(FATAL_ERROR "exit status ${rc}, expected 1")
  endif()
  file(GLOB_RECURSE written ${OUT}/gen/*)
  if(written OR EXISTS ${OUT}/gen)
    message(FATAL_ERROR "a spec with errors wrote: ${written}")
  endif()
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc} for warnings only, expected 0")
endif()
