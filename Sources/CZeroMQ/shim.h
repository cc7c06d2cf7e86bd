#ifndef CIRCUITRY_CZEROMQ_SHIM_H
#define CIRCUITRY_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
