/*
 * unit.h: what every unit test file provides, and small helpers.
 */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H

#include <check.h>

/* The suite of this test binary, defined by the test file. */
Suite	*unit_suite(void);

#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))

#endif /* POSTERN_UNIT_H */
