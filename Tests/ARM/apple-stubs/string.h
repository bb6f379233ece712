#pragma once
// Stand-in for the macOS SDK header in the Apple syntax check (Tests/ARM/apple-check.sh).
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
int strcmp(const char *a, const char *b);
