#ifndef SWIFTLET_CBLAS_H
#define SWIFTLET_CBLAS_H
// Run-time loaded CBLAS (filled in by the tensor-core work).
#endif
