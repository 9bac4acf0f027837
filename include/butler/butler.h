/*
 * butler/butler.h — the one header applications include.
 *
 * butler is a C11 framework for long-lived thread servers: threads that each
 * run a libevent loop, own one inbound channel, and run a typed handler for
 * each message they receive. See README.md for the tour.
 */
#ifndef BUTLER_BUTLER_H
#define BUTLER_BUTLER_H

/* BUTLER_VERSION_* give the runtime's version; butler-gen shares it. */
#define BUTLER_VERSION_MAJOR 0
#define BUTLER_VERSION_MINOR 1
#define BUTLER_VERSION_PATCH 0
#define BUTLER_VERSION_STRING "0.1.0"

#include <butler/error.h>
#include <butler/gen.h>
#include <butler/hub.h>

#endif /* BUTLER_BUTLER_H */
