/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/export.h — BUTLER_API, the mark of butler's public functions.
 *
 * The libraries are built with hidden symbol visibility
 * (-fvisibility=hidden), so a shared butler library exports exactly the
 * functions declared with BUTLER_API and none of the internal butler__*
 * ones. Applications include this header through the others and never use
 * BUTLER_API themselves.
 */
#ifndef BUTLER_EXPORT_H
#define BUTLER_EXPORT_H

/**
 * BUTLER_API marks a public function of butler. With GCC and Clang it gives
 * the function default visibility, both when butler is built and when it is
 * used, for the shared and the static libraries alike (a static library
 * exports nothing by itself); with other compilers it is empty.
 */
#if defined(__GNUC__) && __GNUC__ >= 4
#define BUTLER_API __attribute__((visibility("default")))
#else
#define BUTLER_API
#endif

#endif /* BUTLER_EXPORT_H */
