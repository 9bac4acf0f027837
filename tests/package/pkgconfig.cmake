# SPDX-License-Identifier: MIT
# pkgconfig.cmake — butler for pkg-config and make users: install this
# build into a scratch prefix, then build examples/ping_pong with
# pkgconfig/Makefile (butler-gen from `pkg-config --variable=butler_gen`,
# flags from `pkg-config --cflags --libs butler`, shared and static) and
# run both programs.
#
#   cmake -DBUILD=<this build> -DSRC=<source tree> -DWORK=<scratch>
#         -DMAKE=<make> -DPKG_CONFIG=<pkg-config> -DPCDIR=<libdir>/pkgconfig
#         -P pkgconfig.cmake
cmake_minimum_required(VERSION 3.20)
foreach(var BUILD SRC WORK MAKE PKG_CONFIG PCDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pkgconfig.cmake: -D${var}=... is required")
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
file(MAKE_DIRECTORY ${WORK}/build)
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
set(env ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${WORK}/prefix/${PCDIR}
        PKG_CONFIG=${PKG_CONFIG})

# The .pc files are found and relocatable: their paths lead into the prefix.
run(${env} ${PKG_CONFIG} --modversion butler)
message(STATUS "pkg-config --modversion butler: ${last_out}")
run(${env} ${PKG_CONFIG} --variable=butler_gen butler)
string(STRIP "${last_out}" gen)
if(NOT EXISTS "${gen}")
  message(FATAL_ERROR "butler.pc's butler_gen is '${gen}': no such file")
endif()
run(${env} ${PKG_CONFIG} --print-requires-private butler)
if(NOT last_out MATCHES "libevent_core" OR NOT last_out MATCHES "libevent_pthreads")
  message(FATAL_ERROR "butler.pc: Requires.private lacks libevent:\n${last_out}")
endif()
if(EXISTS ${WORK}/prefix/${PCDIR}/butler-glib.pc)
  run(${env} ${PKG_CONFIG} --print-requires butler-glib)
  if(NOT last_out MATCHES "glib-2.0" OR NOT last_out MATCHES "butler")
    message(FATAL_ERROR "butler-glib.pc: Requires lacks glib-2.0 or "
                        "butler:\n${last_out}")
  endif()
  run(${env} ${PKG_CONFIG} --libs butler-glib)
  message(STATUS "pkg-config --libs butler-glib: ${last_out}")
endif()

run(${env} ${MAKE} -C ${WORK}/build -f ${SRC}/tests/package/pkgconfig/Makefile
    SRC=${SRC}/examples/ping_pong)
foreach(prog ping_pong ping_pong_static)
  run(${WORK}/build/${prog})
  if(NOT last_out MATCHES "main: rally over after 10 hits")
    message(FATAL_ERROR "${prog}: unexpected output:\n${last_out}")
  endif()
endforeach()

# The static program does not load libbutler.so; the shared one does.
find_program(READELF readelf)
if(READELF)
  run(${READELF} -d ${WORK}/build/ping_pong)
  if(NOT last_out MATCHES "libbutler\\.so\\.[0-9]+")
    message(FATAL_ERROR "ping_pong does not need libbutler.so.N:\n${last_out}")
  endif()
  run(${READELF} -d ${WORK}/build/ping_pong_static)
  if(last_out MATCHES "libbutler")
    message(FATAL_ERROR "ping_pong_static needs libbutler:\n${last_out}")
  endif()
endif()
