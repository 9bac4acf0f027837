/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/butler.h — the one header applications include.
 *
 * butler is a C11 framework for long-lived thread servers: threads that each
 * run a libevent loop, own one inbound channel, and run a typed handler for
 * each message they receive. See README.md for the tour.
 */
#ifndef BUTLER_BUTLER_H
#define BUTLER_BUTLER_H

/* BUTLER_VERSION_* give the runtime's version; butler-gen shares it. */
#include <butler/version.h>

#include <butler/error.h>
#include <butler/export.h>
#include <butler/gen.h>
#include <butler/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * butler_version returns the version of the butler library the program
 * runs with, "MAJOR.MINOR.PATCH": the BUTLER_VERSION_STRING of the headers
 * the library was built from, which may differ from the one the program
 * was compiled with when the shared library was upgraded underneath it.
 * The string is static. Any thread.
 */
BUTLER_API const char *butler_version(void);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_BUTLER_H */
