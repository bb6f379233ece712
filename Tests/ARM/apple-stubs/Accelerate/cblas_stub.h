#pragma once
// Stand-in for Accelerate's CBLAS interface (vecLib cblas.h in the macOS / iOS SDK) in the Apple
// syntax check (Tests/ARM/apple-check.sh): the enums and the two calls Swiftlet makes, with the
// SDK's C signatures, so the `canImport(Accelerate)` branches of SwiftletTensor type-check here.
#ifndef SWIFTLET_ACCELERATE_STUB_H
#define SWIFTLET_ACCELERATE_STUB_H
typedef enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_ORDER;
typedef enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 } CBLAS_TRANSPOSE;
void cblas_sgemm(const enum CBLAS_ORDER ORDER, const enum CBLAS_TRANSPOSE TRANSA, const enum CBLAS_TRANSPOSE TRANSB,
                 const int M, const int N, const int K, const float ALPHA, const float *A, const int LDA,
                 const float *B, const int LDB, const float BETA, float *C, const int LDC);
void cblas_sgemv(const enum CBLAS_ORDER ORDER, const enum CBLAS_TRANSPOSE TRANSA, const int M, const int N,
                 const float ALPHA, const float *A, const int LDA, const float *X, const int INCX,
                 const float BETA, float *Y, const int INCY);
#endif
