#pragma once
// Stand-in for the macOS SDK's <sys/sysctl.h> in the Apple syntax check (Tests/ARM/apple-check.sh):
// the one declaration the kernels use, with the SDK's signature.
#include <stddef.h>
int sysctlbyname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
