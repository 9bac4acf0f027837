# SPDX-License-Identifier: MIT
# symbols.cmake — a shared library exports exactly the functions that its
# public headers declare with BUTLER_API: no butler__ internal (hidden
# visibility), no symbol outside PREFIX, and no declared function missing.
#
#   cmake -DNM=<nm> -DLIB=<lib.so> -DPREFIX=<butler_> -DHEADERS=<h;...>
#         [-DGENERATED=<header.butler.h>] -P symbols.cmake
#
# A first-party server's library (servers/) also exports the functions
# and the table generated from its spec: GENERATED names their header, and
# every function and variable it declares at the start of a line counts as
# declared (and must be exported).
cmake_minimum_required(VERSION 3.20)
foreach(var NM LIB PREFIX HEADERS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "symbols.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only ${LIB}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${LIB} failed (${rc}):\n${err}")
endif()
# Lines read "0000000000012340 T butler_send"; symbol versions (@...) are
# not used, but would be cut off.
set(exported "")
string(REGEX MATCHALL "[^\n]+" lines "${out}")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ @]+)")
    list(APPEND exported ${CMAKE_MATCH_1})
  endif()
endforeach()
list(SORT exported)

# Every "BUTLER_API <type> name(" of the headers.
set(declared "")
foreach(h IN LISTS HEADERS)
  file(READ ${h} text)
  string(REGEX MATCHALL "BUTLER_API[^;(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\\("
         decls "${text}")
  foreach(d IN LISTS decls)
    string(REGEX MATCH "([A-Za-z_][A-Za-z0-9_]*)\\($" name "${d}")
    list(APPEND declared ${CMAKE_MATCH_1})
  endforeach()
endforeach()
set(generated "")
if(DEFINED GENERATED)
  file(READ ${GENERATED} text)
  # "int\ntasks_send_pool_run(" in the source is "int tasks_send_pool_run("
  # in the header: declarations start with their type, on one line, and
  # end the name with "(" (functions) or ";" (the table).
  string(REGEX MATCHALL "\n[a-z][a-z0-9_ *]*[ *][a-z][a-z0-9_]*[(;]"
         decls "${text}")
  # (A match ending in ";" is split there by the list: no ";" is left.)
  foreach(d IN LISTS decls)
    if(d MATCHES "([a-z][a-z0-9_]*)[(]?$")
      list(APPEND generated ${CMAKE_MATCH_1})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES generated)
  list(APPEND declared ${generated})
endif()
list(SORT declared)

set(problems "")
foreach(s IN LISTS exported)
  if(s MATCHES "^__odr_asan")
    # AddressSanitizer's mark of an exported global (tasks_spec), not ours
  elseif(s MATCHES "^butler__")
    string(APPEND problems "  exports internal ${s}\n")
  elseif(s IN_LIST generated)
    # generated from the server's spec
  elseif(NOT s MATCHES "^${PREFIX}")
    string(APPEND problems "  exports ${s}, outside ${PREFIX}*\n")
  elseif(NOT s IN_LIST declared)
    string(APPEND problems "  exports ${s}, which no header declares "
                           "with BUTLER_API\n")
  endif()
endforeach()
foreach(s IN LISTS declared)
  if(NOT s IN_LIST exported)
    string(APPEND problems "  does not export ${s} (declared BUTLER_API)\n")
  endif()
endforeach()
list(LENGTH exported n_exported)
list(LENGTH declared n_declared)
if(n_declared EQUAL 0)
  string(APPEND problems "  no BUTLER_API declaration found in ${HEADERS}\n")
endif()
if(problems)
  message(FATAL_ERROR "${LIB}:\n${problems}")
endif()
message(STATUS "${LIB}: exports the ${n_exported} functions declared with "
               "BUTLER_API, nothing else")
