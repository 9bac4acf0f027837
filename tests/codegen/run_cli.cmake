# SPDX-License-Identifier: MIT
# run_cli.cmake — butler-gen's command line: options, exit statuses, and
# that --check writes nothing.
#
#   cmake -DGEN=<butler-gen> -DDIR=<tests/codegen> -DOUT=<scratch>
#         -P run_cli.cmake
foreach(var GEN DIR OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_cli.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${OUT})

# expect(<rc> <stdout regex> <stderr regex> <arg>...) runs butler-gen in DIR.
function(expect want_rc out_re err_re)
  execute_process(COMMAND ${GEN} ${ARGN} WORKING_DIRECTORY ${DIR}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL want_rc)
    message(FATAL_ERROR "butler-gen ${ARGN}: exit ${rc}, expected "
                        "${want_rc}\nstdout: ${out}\nstderr: ${err}")
  endif()
  if(NOT out MATCHES "${out_re}")
    message(FATAL_ERROR "butler-gen ${ARGN}: stdout does not match "
                        "'${out_re}':\n${out}")
  endif()
  if(NOT err MATCHES "${err_re}")
    message(FATAL_ERROR "butler-gen ${ARGN}: stderr does not match "
                        "'${err_re}':\n${err}")
  endif()
endfunction()

expect(0 "^usage: butler-gen \\[options\\] SPEC.json\n" "^$" --help)
expect(0 "^butler-gen [0-9]+\\.[0-9]+\\.[0-9]+ " "^$" --version)
expect(2 "^$" "^butler-gen: error: no spec file given\n")
expect(2 "^$" "^butler-gen: error: unknown option '--frobnicate'\n"
       --frobnicate ok/minimal.json)
expect(2 "^$" "more than one spec given" ok/minimal.json ok/names.json)
expect(2 "^$" "--max-errors needs a number" --max-errors=x ok/minimal.json)
expect(2 "^$" "missing directory after '--out-dir'" ok/minimal.json
       --out-dir)
expect(1 "^$" "^no/such.json: error: cannot open the spec: no such file"
       no/such.json)

# The import path: imports/path/c.json imports "b.json", which is not
# beside it; -I finds imports/b.json, and the depfile names that file.
expect(1 "^$" "cannot read imported spec 'b.json' \\(imports/path/b.json\\)"
       --check imports/path/c.json)
expect(0 "^$" "^$" -o ${OUT}/path -I no/such/dir --import-path imports
       --depfile ${OUT}/path/c.d imports/path/c.json)
file(READ ${OUT}/path/c.d depfile)
if(NOT depfile MATCHES " imports/b.json\n")
  message(FATAL_ERROR "the depfile does not name imports/b.json:\n${depfile}")
endif()
expect(2 "^$" "missing directory after '-I'" imports/path/c.json -I)
expect(2 "^$" "empty import directory" --import-path= imports/path/c.json)

# --check validates and writes nothing, not even the directory.
expect(0 "^$" "^$" --check --out-dir ${OUT}/check ok/minimal.json)
if(EXISTS ${OUT}/check)
  message(FATAL_ERROR "--check created ${OUT}/check")
endif()

# Warnings alone pass, unless --werror.
expect(0 "^$" "warning: message 'orphan' is not used" --check
       bad/unused_message.json)
expect(1 "^$" "warning: message 'orphan' is not used" --check --werror
       bad/unused_message.json)

# --max-errors caps what is shown, then says how much is left out.
expect(1 "^$" "u99.*u99.*too many errors, stopping: 23 more not shown"
       --max-errors 2 bad/too_many_errors.json)
expect(1 "^$" "^(bad/too_many_errors.json:[0-9]+:[0-9]+: (error|warning): [^\n]*\n)+$"
       --max-errors=0 bad/too_many_errors.json)

# A good spec is written where asked, in nested directories created on
# the way, under names derived from the spec's.
expect(0 "^$" "^$" -o ${OUT}/a/b ok/minimal.json)
foreach(f minimal.butler.h minimal.butler.c)
  if(NOT EXISTS ${OUT}/a/b/${f})
    message(FATAL_ERROR "butler-gen -o ${OUT}/a/b wrote no ${f}")
  endif()
endforeach()

# --spec-name names the spec in the generated files (butler_generate()
# passes a path relative to the source tree there); diagnostics keep the
# path as given, which an editor can open.
expect(0 "^$" "^$" -o ${OUT}/named --spec-name=some/where.json ok/minimal.json)
foreach(f minimal.butler.h minimal.butler.c)
  file(STRINGS ${OUT}/named/${f} banner LIMIT_COUNT 1)
  if(NOT banner MATCHES " from some/where\\.json\\. DO NOT EDIT\\. ")
    message(FATAL_ERROR "--spec-name: ${f} starts with: ${banner}")
  endif()
endforeach()
file(READ ${OUT}/named/minimal.butler.h header)
if(NOT header MATCHES "regenerate some/where\\.json with")
  message(FATAL_ERROR "--spec-name: the ABI #error does not name the spec")
endif()
expect(1 "^$" "^bad/syntax_empty.json:1:1: error: "
       --spec-name other.json bad/syntax_empty.json)
expect(2 "^$" "missing name after '--spec-name'" ok/minimal.json --spec-name)
expect(2 "^$" "empty spec name" --spec-name= ok/minimal.json)
# --depfile: a Makefile rule naming the spec and every spec it imports;
# never written by --check or when the spec has errors.
expect(0 "^$" "^$" -o ${OUT}/dep --depfile ${OUT}/dep/a.d imports/a.json)
file(READ ${OUT}/dep/a.d rule)
set(want "${OUT}/dep/a.butler.h ${OUT}/dep/a.butler.c: \\\n  imports/a.json \\\n  imports/b.json\n")
if(NOT rule STREQUAL want)
  message(FATAL_ERROR "depfile:\n${rule}\nexpected:\n${want}")
endif()
expect(0 "^$" "^$" --check --depfile ${OUT}/dep/check.d imports/a.json)
expect(1 "^$" "imported spec 'imports/broken.json' has 2 errors"
       -o ${OUT}/dep --depfile ${OUT}/dep/broken.d bad/import_broken.json)
foreach(f check.d broken.d)
  if(EXISTS ${OUT}/dep/${f})
    message(FATAL_ERROR "butler-gen wrote ${OUT}/dep/${f}")
  endif()
endforeach()
expect(2 "^$" "missing file after '--depfile'" imports/a.json --depfile)
