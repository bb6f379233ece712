#include "swiftlet_kernels.h"
