/* clcnn visualize: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_visualize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn visualize: not built yet\n");
    return 1;
}
