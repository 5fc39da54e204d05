/*
 * main.c: runs the one suite a unit test binary defines and reports it as
 * TAP on stdout, so that meson counts every test case.
 */
#include <stdlib.h>

#include <check.h>

#include "unit.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(unit_suite());
	srunner_set_tap(sr, "-");
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
