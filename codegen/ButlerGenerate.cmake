# SPDX-License-Identifier: MIT
# ButlerGenerate.cmake — butler_generate(), C from butler specs at build time.
#
#   butler_generate(<target> <spec.json>... [OUT_DIR <dir>]
#                   [RUNTIME <library target>] [IMPORT_PATH <dir>...]
#                   [DEPENDS <file>...])
#
# For each spec, runs butler-gen at build time into OUT_DIR (default
# ${CMAKE_CURRENT_BINARY_DIR}/butler_gen, never the source tree) producing
# <base>.butler.h and <base>.butler.c, adds both to <target>, puts OUT_DIR on
# its include path (PUBLIC: users of the target include the header too) and
# links it with RUNTIME: butler::butler, the shared library, by default, or
# butler::butler_static. Generation re-runs when the spec, a spec it
# imports, butler-gen itself or a DEPENDS file changes. A spec that imports
# others includes their generated headers and refers to their tables, so
# <target> must link the library built from each import (butler::tasks for
# a first-party server): its spec is generated there, once. A relative
# import that is not beside the importing spec is looked for in each
# IMPORT_PATH directory, then in the directories of butler::gen's
# BUTLER_IMPORT_PATH property: the first-party servers' specs, installed
# (<prefix>/share/butler/specs) or in the butler build tree, so that
# "imports": ["butler/tasks.json"] works either way. butler-gen
# rewrites an output only when its content changes, so an edit to a spec
# that does not change the C code rebuilds nothing (with Ninja, which
# re-checks timestamps).
#
# The generated files name the spec by its path relative to the top source
# directory (CMAKE_SOURCE_DIR; a spec in the build tree: relative to
# CMAKE_BINARY_DIR; elsewhere: its absolute path), so that they do not
# depend on where the tree is checked out. butler-gen's diagnostics give
# the absolute path, which editors and IDEs can open.
#
# Call it in the directory that created <target>: CMake attaches custom
# command outputs only to targets of the same directory.
include_guard(GLOBAL)

function(butler_generate target)
  cmake_parse_arguments(PARSE_ARGV 1 BG "" "OUT_DIR;RUNTIME"
                        "DEPENDS;IMPORT_PATH")
  if(NOT TARGET ${target})
    message(SEND_ERROR "butler_generate: '${target}' is not a target")
    return()
  endif()
  if(NOT BG_UNPARSED_ARGUMENTS)
    message(SEND_ERROR "butler_generate(${target}): no spec file given")
    return()
  endif()
  if(NOT TARGET butler::gen)
    message(SEND_ERROR "butler_generate: butler::gen is not defined; "
                       "use find_package(butler) first")
    return()
  endif()
  if(NOT BG_RUNTIME)
    set(BG_RUNTIME butler::butler)
  endif()
  if(NOT BG_OUT_DIR)
    set(BG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/butler_gen)
  endif()
  get_filename_component(BG_OUT_DIR "${BG_OUT_DIR}" ABSOLUTE
                         BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
  file(MAKE_DIRECTORY ${BG_OUT_DIR})
  # -I for each directory of the import path, the caller's first.
  get_target_property(builtin_path butler::gen BUTLER_IMPORT_PATH)
  set(import_args "")
  foreach(dir IN LISTS BG_IMPORT_PATH builtin_path)
    if(dir)
      get_filename_component(dir "${dir}" ABSOLUTE)
      list(APPEND import_args --import-path ${dir})
    endif()
  endforeach()

  foreach(spec IN LISTS BG_UNPARSED_ARGUMENTS)
    get_filename_component(abs "${spec}" ABSOLUTE)
    if(NOT EXISTS "${abs}")
      message(SEND_ERROR "butler_generate(${target}): no such spec: ${abs}")
      continue()
    endif()
    get_filename_component(name "${abs}" NAME)
    string(REGEX REPLACE "\\.json$" "" base "${name}")
    # Outputs are named after the spec's file name alone.
    if(base IN_LIST bases)
      message(SEND_ERROR "butler_generate(${target}): two specs named "
                         "${name} would write the same files into "
                         "${BG_OUT_DIR}; give one its own OUT_DIR")
      continue()
    endif()
    list(APPEND bases ${base})
    # The build tree is checked first: it often lies inside the source
    # tree, under a name of the user's choosing.
    cmake_path(IS_PREFIX CMAKE_BINARY_DIR "${abs}" NORMALIZE in_build)
    cmake_path(IS_PREFIX CMAKE_SOURCE_DIR "${abs}" NORMALIZE in_source)
    if(in_build)
      file(RELATIVE_PATH spec_name ${CMAKE_BINARY_DIR} ${abs})
    elseif(in_source)
      file(RELATIVE_PATH spec_name ${CMAKE_SOURCE_DIR} ${abs})
    else()
      set(spec_name ${abs})
    endif()
    set(h ${BG_OUT_DIR}/${base}.butler.h)
    set(c ${BG_OUT_DIR}/${base}.butler.c)
    set(d ${BG_OUT_DIR}/${base}.butler.d)
    # DEPENDS names the generator target as well as the spec: a
    # $<TARGET_FILE:...> in COMMAND alone would not re-run generation when
    # butler-gen is rebuilt. The depfile butler-gen writes names the specs
    # the spec imports, so that editing one regenerates (Ninja, and
    # Makefiles since CMake 3.20). Its paths are absolute, as `abs` is, so
    # policy CMP0116 does not matter.
    # (Before 3.20 only Ninja read depfiles; elsewhere DEPFILE was an
    # error, so an older CMake regenerates on the spec alone.)
    set(depfile DEPFILE ${d})
    if(CMAKE_VERSION VERSION_LESS 3.20
       AND NOT CMAKE_GENERATOR MATCHES "Ninja")
      set(depfile "")
    endif()
    add_custom_command(
      OUTPUT ${h} ${c}
      COMMAND butler::gen --out-dir ${BG_OUT_DIR} --spec-name ${spec_name}
              --depfile ${d} ${import_args} ${abs}
      DEPENDS ${abs} butler::gen ${BG_DEPENDS}
      ${depfile}
      COMMENT "butler-gen ${spec}"
      VERBATIM)
    target_sources(${target} PRIVATE ${h} ${c})
  endforeach()
  target_include_directories(${target} PUBLIC ${BG_OUT_DIR})
  target_link_libraries(${target} PUBLIC ${BG_RUNTIME})
endfunction()
