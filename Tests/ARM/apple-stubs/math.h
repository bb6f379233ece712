#pragma once
// Stand-in for the macOS SDK header in the Apple syntax check (Tests/ARM/apple-check.sh).
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
float expf(float), fabsf(float), sqrtf(float), tanhf(float), nearbyintf(float), erff(float);
float fmaf(float, float, float), fmaxf(float, float), ldexpf(float, int);
float nextafterf(float, float);
#define isfinite(x) __builtin_isfinite(x)
