/* clcnn devices: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_devices(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn devices: not built yet\n");
    return 1;
}
