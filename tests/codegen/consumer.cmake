# SPDX-License-Identifier: MIT
# consumer.cmake — the installed package works: install this build into a
# scratch prefix, then configure, build and run examples/ping_pong against
# it as an out-of-tree project would (find_package(butler) and
# butler_generate() from the installed butlerConfig.cmake), and
# examples/tasks and examples/files, whose specs import the installed
# first-party servers' specs (find_package(butler COMPONENTS tasks|files)).
#
#   cmake -DBUILD=<this build> -DSRC=<source tree> -DWORK=<scratch>
#         -DGENERATOR=<cmake generator> -P consumer.cmake
foreach(var BUILD SRC WORK GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} -S ${SRC}/examples/ping_pong -B ${WORK}/build
    -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK}/prefix)
run(${CMAKE_COMMAND} --build ${WORK}/build)
if(NOT EXISTS ${WORK}/build/butler_gen/ping_pong.butler.h)
  message(FATAL_ERROR "butler_generate() did not write into the build tree")
endif()
run(${WORK}/build/ping_pong)
if(NOT last_out MATCHES "main: rally over after 10 hits")
  message(FATAL_ERROR "unexpected output:\n${last_out}")
endif()

# The first-party servers: components, their installed specs found by
# butler_generate() for "imports": ["butler/<name>.json"].
foreach(example tasks files)
  run(${CMAKE_COMMAND} -S ${SRC}/examples/${example} -B ${WORK}/${example}
      -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK}/prefix)
  run(${CMAKE_COMMAND} --build ${WORK}/${example})
  run(${WORK}/${example}/${example}_demo)
  set(out_${example} "${last_out}")
endforeach()
if(NOT out_tasks MATCHES "11 tasks: 8 results, 3 cancelled, 11 arguments freed")
  message(FATAL_ERROR "tasks_demo: unexpected output:\n${out_tasks}")
endif()
if(NOT out_files MATCHES "read back: 'hello' and 'files!'")
  message(FATAL_ERROR "files_demo: unexpected output:\n${out_files}")
endif()
