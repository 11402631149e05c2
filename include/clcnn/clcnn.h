/* clcnn: convolutional neural networks on any OpenCL device. Includes every public header. */
#ifndef CLCNN_H
#define CLCNN_H

#include "data.h"
#include "device.h"
#include "graph.h"
#include "nn.h"
#include "ops.h"
#include "status.h"
#include "tensor.h"
#include "tune.h"

#endif
