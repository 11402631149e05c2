/* clcnn cache: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_cache(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn cache: not built yet\n");
    return 1;
}
