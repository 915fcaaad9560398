/* Placeholder: the CLI lands with the runtime (issue 2). */
#include <stdio.h>

int main(void)
{
  fprintf(stderr, "kura: not built yet\n");
  return 2;
}
