# SPDX-License-Identifier: MIT
# run_rejected.cmake — every object-like macro that this system's C11 and
# POSIX headers define (all_headers.h, in one compiler mode), outside the
# name space C reserves (_X, __x), is refused by butler-gen as a field name.
# A header update that adds a macro the lists in codegen/names.c miss fails
# here, before it breaks a user's build.
#
#   cmake -DGEN=<butler-gen> -DCC=<compiler> -DMODE=<flags;...>
#         -DHEADERS=<all_headers.h> -DOUT=<scratch dir> -P run_rejected.cmake
foreach(var GEN CC MODE HEADERS OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_rejected.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${OUT})

execute_process(COMMAND ${CC} ${MODE} -dM -E -x c ${HEADERS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE defines ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CC} ${MODE} -dM -E failed:\n${err}")
endif()
# "#define NAME value" (object-like), not "#define NAME(args) ...".
string(REGEX MATCHALL "#define [A-Za-z][A-Za-z0-9_]*[ \n]" lines "${defines}")
set(names "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "#define ([A-Za-z0-9_]+)[ \n]" "\\1" name "${line}")
  list(APPEND names ${name})
endforeach()
list(REMOVE_DUPLICATES names)
list(LENGTH names n)
if(n LESS 100)
  message(FATAL_ERROR "only ${n} macros found: is ${HEADERS} right?")
endif()

set(fields "")
foreach(name IN LISTS names)
  string(APPEND fields "\"${name}\": \"u8\",\n")
endforeach()
string(REGEX REPLACE ",\n$" "\n" fields "${fields}")
file(WRITE ${OUT}/macros.json
     "{ \"butler\": 1, \"app\": \"zz\",\n"
     "  \"messages\": { \"m\": { \"fields\": {\n${fields}} } },\n"
     "  \"servers\": { \"s\": { \"accepts\": [\"m\"] } } }\n")
execute_process(COMMAND ${GEN} --check --max-errors 0 ${OUT}/macros.json
                RESULT_VARIABLE rc ERROR_VARIABLE err)
set(missed "")
foreach(name IN LISTS names)
  string(FIND "${err}" "error: field name '${name}' " at)
  if(at LESS 0)
    list(APPEND missed ${name})
  endif()
endforeach()
if(missed)
  list(LENGTH missed n_missed)
  list(JOIN missed " " missed)
  message(FATAL_ERROR "butler-gen accepts ${n_missed} of the ${n} macros "
                      "of ${CC} ${MODE} as field names (add them to "
                      "codegen/names.c): ${missed}")
endif()
message(STATUS "all ${n} macros of ${CC} ${MODE} are refused")
