/*
 * run_suites.c - the Check runner shared by tests/unit, tests/policy and tests/integration.
 * With no argument it runs every suite of its kind; with names, only those
 * (ctest runs one suite per test). Exits non-zero if any test failed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

#define X(name) Suite *name##_suite(void);
SOCKRPC_SUITES
#undef X

struct entry {
	const char *name;
	Suite *(*make)(void);
};

static const struct entry all_suites[] = {
#define X(name) {#name, name##_suite},
    SOCKRPC_SUITES
#undef X
};

static int
wanted(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	SRunner *runner = NULL;
	int failed, matched = 0;

	for (size_t i = 0; i < sizeof(all_suites) / sizeof(all_suites[0]); i++) {
		if (!wanted(all_suites[i].name, argc, argv))
			continue;
		matched++;
		if (runner == NULL)
			runner = srunner_create(all_suites[i].make());
		else
			srunner_add_suite(runner, all_suites[i].make());
	}
	if (matched == 0) {
		fprintf(stderr, "no such suite\n");
		return 2;
	}
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
