/* Placeholder until the client binding lands (issue 4): adds nothing. */
#include "lua/binding.h"

void kr_lua_open_client(lua_State *L)
{
  (void)L;
}
