/*
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput once on each file given,
 * descending into directories, without libFuzzer: built with the ordinary compiler (and
 * sanitizers or valgrind if the build has them), it replays the corpus and the regression
 * inputs in ctest (tools/fuzz/replay.cmake). usage: fuzz_replay_TARGET FILE|DIR...
 * Exits 0 when every input ran; a finding aborts, as under libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long replayed;

static void replay_path(const char *path);

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry of dir, in name order (so that a run is the same everywhere). */
static void
replay_dir(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (dir == NULL) {
		perror(path);
		exit(1);
	}
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((names = realloc(names, cap * sizeof(*names))) == NULL)
				abort();
		}
		if (asprintf(&names[n++], "%s/%s", path, e->d_name) < 0)
			abort();
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		replay_path(names[i]);
		free(names[i]);
	}
	free(names);
}

static void
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		exit(1);
	}
	/* An exact-size copy, as libFuzzer gives: ASan sees a read past the input. */
	if ((data = malloc(size > 0 ? (size_t)size : 1)) == NULL ||
	    fread(data, 1, (size_t)size, f) != (size_t)size) {
		perror(path);
		exit(1);
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, size);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	free(data);
	replayed++;
}

static void
replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		perror(path);
		exit(1);
	}
	if (S_ISDIR(st.st_mode))
		replay_dir(path);
	else if (S_ISREG(st.st_mode))
		replay_file(path);
}

int
main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		replay_path(argv[i]);
	fprintf(stderr, "replay: %lu inputs, no finding\n", replayed);
	return 0;
}
