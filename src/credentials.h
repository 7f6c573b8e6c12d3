/* credentials.h - the embedded back end's generated credentials, kept in the data file.
 *
 * On a new data file the embedded back end makes ACCOUNT_SID, API_KEY, API_SECRET,
 * AUTH_TOKEN and JWT_SECRET once and stores them, so that restarts, `tassa user-token` and
 * `tassa event` agree. A value set in the environment, `.env` or a flag always wins and is
 * never written to the data file.
 *
 * Layer: app.
 */
#ifndef TASSA_CREDENTIALS_H
#define TASSA_CREDENTIALS_H

#include <stdbool.h>

#include "base/config.h"
#include "store/store.h"

/* Fills every unset credential of c from the data file, generating and storing the missing
 * ones. *generated (may be NULL) tells whether anything new was made. TASSA_ESTORE/ENOMEM. */
tassa_err credentials_fill(config_t *c, store_t *s, bool *generated, errmsg_t *em);

#endif
