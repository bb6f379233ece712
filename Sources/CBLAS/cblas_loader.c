#include "swiftlet_cblas.h"
