/* log.h - one line per event on stderr, key=value, with a UTC timestamp and level.
 *
 * Thread-safe: each call writes one line with a single write(2). Never pass a token, a
 * secret, an Authorization header or a password.
 *
 * Layer: base.
 */
#ifndef TASSA_LOG_H
#define TASSA_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Sets the lowest level written; the default is LOG_INFO. Call once at start-up. */
void log_set_level(log_level_t level);

/* Writes "ts level msg" where msg is printf-formatted, e.g.
 * log_msg(LOG_INFO, "event=start port=%d", port). Lines longer than 2 KiB are cut. */
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
