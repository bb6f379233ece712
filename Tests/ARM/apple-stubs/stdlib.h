#pragma once
// Stand-in for the macOS SDK header in the Apple syntax check (Tests/ARM/apple-check.sh).
#include <stddef.h>
void *malloc(size_t n);
void *calloc(size_t count, size_t n);
void free(void *p);
int posix_memalign(void **p, size_t alignment, size_t n);
char *getenv(const char *name);
int atoi(const char *s);
