/*
 * python.c - the Python figure (issue 19): python_bench.py, run with the interpreter the
 * build found and the sockrpc package of the build tree, measures bulk send and receive
 * through sockrpc.socket against Python's own socket on the bench's loopback server, and
 * a small call against a raw Unix-socket ping-pong, in Python on both sides. It
 * alternates the variants itself; this file runs it and adds its rows to the table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Python moves bytes about 20x slower than C here: the figure caps its transfers. */
#define PYTHON_MAX_BYTES (512ULL << 20)

/* The interpreter bindings/python/CMakeLists.txt wrote beside the package, or NULL. */
static const char *
python_interpreter(void)
{
	static char path[512];
	FILE *f = fopen(SOCKRPC_PYTHON_BUILD "/interpreter", "r");

	if (f == NULL)
		return NULL;
	if (fgets(path, sizeof(path), f) == NULL) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	path[strcspn(path, "\n")] = '\0';
	return access(path, X_OK) == 0 ? path : NULL;
}

void
figure_python(const char *daemon_socket, const struct bench_args *a)
{
	char cmd[2048], line[256], name[16];
	const char *python = python_interpreter();
	uint64_t bytes = a->bytes < PYTHON_MAX_BYTES ? a->bytes : PYTHON_MAX_BYTES;
	double broker, base;
	FILE *p;

	if (python == NULL || access(SOCKRPC_PYTHON_BUILD "/sockrpc/__init__.py", R_OK) != 0) {
		fprintf(stderr, "sockrpc_bench: python: the binding is not built (python3-dev)\n");
		return;
	}
	snprintf(cmd, sizeof(cmd),
	         "PYTHONPATH='%s' PYTHONDONTWRITEBYTECODE=1 '%s' '%s' --socket '%s' --port %d "
	         "--bytes %llu --rounds %d --calls %d",
	         SOCKRPC_PYTHON_BUILD, python, SOCKRPC_BENCH_PY, daemon_socket, a->bulk_port,
	         (unsigned long long)bytes, a->rounds, a->calls);
	if ((p = popen(cmd, "r")) == NULL) {
		fprintf(stderr, "sockrpc_bench: python: cannot run %s\n", python);
		return;
	}
	while (fgets(line, sizeof(line), p) != NULL) {
		if (sscanf(line, "%15s %lf %lf", name, &broker, &base) != 3)
			continue;
		if (strcmp(name, "small") == 0)
			bench_add_row("python small call mean", broker, "us",
			              "Python raw Unix ping-pong", broker / base, "<= 2x",
			              broker / base <= 2.0);
		else
			bench_add_row(strcmp(name, "send") == 0 ? "python bulk send MiB/s"
			                                        : "python bulk recv MiB/s",
			              broker, "", "Python socket, direct TCP", broker / base,
			              ">= 0.8x", broker / base >= 0.8);
	}
	if (pclose(p) != 0)
		fprintf(stderr, "sockrpc_bench: python: python_bench.py failed\n");
}
