# consumer.cmake — the installed package works: install this build into a
# scratch prefix, then configure, build and run examples/ping_pong against
# it as an out-of-tree project would (find_package(butler) and
# butler_generate() from the installed butlerConfig.cmake).
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
