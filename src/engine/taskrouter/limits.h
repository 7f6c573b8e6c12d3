/* limits.h - Twilio's TaskRouter resource limits (TWILIO-NOTES section 7), as the engine
 * enforces them.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_LIMITS_H
#define TASSA_TR_LIMITS_H

#define TR_MAX_ATTRIBUTES    16384
#define TR_MAX_FRIENDLY_NAME 64
#define TR_MAX_WORKERS       15000
#define TR_MAX_QUEUES        5000
#define TR_MAX_WORKFLOWS     1000
#define TR_MAX_ACTIVITIES    100
#define TR_MAX_TASKS         500000

#endif
