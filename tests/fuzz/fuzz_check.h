/*
 * fuzz_check.h - the oracle of every libFuzzer harness: a property that
 * does not hold aborts with its file, line and text, and libFuzzer keeps
 * the input as a crasher.
 */
#ifndef POSTERN_FUZZ_CHECK_H
#define POSTERN_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: oracle failed: %s\n",          \
				__FILE__, __LINE__, #x);                       \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
