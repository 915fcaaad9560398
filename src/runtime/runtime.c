/* Placeholder: the runtime lands with issue 2. */
#include "runtime/runtime.h"
