#ifndef SWIFTLET_KERNELS_H
#define SWIFTLET_KERNELS_H
// Hot quantized loops in C with run-time CPU dispatch. Every kernel has a Swift reference twin.
#include <stddef.h>
#include <stdint.h>
#include "gemm_f32.h"
#include "vector_f32.h"
#include "quant_dot.h"
#include "ggml_compat.h"
#include "flash_attn.h"
#include "gemm_bf16.h"
#endif
