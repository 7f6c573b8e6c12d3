/* ops.h - operational endpoints: GET /healthz. */
#ifndef TASSA_OPS_H
#define TASSA_OPS_H

#include "app.h"

/* Adds GET /healthz ({"status":"ok","backend":...}; 503 when the data file cannot be read). */
tassa_err ops_register(app_t *app);

#endif
