/* Placeholder: the store lands with issue 3. */
#include "core/store.h"
