/* The subcommands of the clcnn command: one file per subcommand, each exporting
 * int cmd_<name>(int argc, char **argv) (argv[0] is the subcommand name), returning
 * the process exit code. */
#ifndef CLCNN_TOOL_COMMANDS_H
#define CLCNN_TOOL_COMMANDS_H

int cmd_devices(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_train(int argc, char **argv);
/* clcnn train --devices ..., or under mpirun: data-parallel (train_dist.c). */
int cmd_train_dist(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_visualize(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_onnx(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
