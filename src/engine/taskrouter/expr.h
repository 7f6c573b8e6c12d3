/* expr.h - TaskRouter's expression language: parse once, evaluate against JSON many times.
 *
 * Used by queue TargetWorkers, workflow filter and target `expression`, the Workers list
 * `TargetWorkersExpression` and the Tasks list `EvaluateTaskAttributes`.
 *
 * Grammar (keywords AND OR NOT HAS IN CONTAINS true false null are case-insensitive):
 *   or_expr  := and_expr (OR and_expr)*
 *   and_expr := not_expr (AND not_expr)*
 *   not_expr := NOT not_expr | cmp
 *   cmp      := operand (op operand)?     op: == = != > < >= <= HAS IN NOT IN CONTAINS
 *   operand  := 'str' | "str" | number (int or float, optional '-', optional exponent)
 *             | true | false | null | [const, ...] | path a.b[1].c | ( or_expr )
 * In strings, \n \t \r are control characters and a backslash before any other byte stands
 * for that byte (\' \" \\). An operand standing alone must be boolean: true, false, a
 * parenthesised expression or a path (true only when its value is JSON true); a lone string,
 * number, null or list is a parse error. Identifiers hold letters, digits and underscores
 * only (no hyphens); a segment after a '.' may be a keyword (`task.in`).
 *
 * Semantics (expr_eval):
 * - A missing key, an index out of range and JSON null all count as NULL.
 * - == compares numbers numerically (integer vs real is fine), strings exactly (byte for
 *   byte, case-sensitive), booleans by value, arrays and objects structurally. Comparing with
 *   NULL or across types is false, so `x == null` is always false.
 * - != is true when exactly one side is NULL, false when both are; otherwise it is true only
 *   for two values of the same type that differ (`"5" != 5` is false).
 * - > < >= <= order numbers numerically and strings by bytes; any other pair is false.
 * - `x HAS v`: x is an array with an element equal (as ==) to v.
 * - `v IN list`: list (a literal or an array-valued path) has an element equal to v; when v
 *   is itself an array, true when any of its elements is in list.
 * - `v NOT IN list` is exactly the negation of IN. As in Twilio, it is therefore TRUE when v
 *   is missing or null, and when list is missing or not an array: `worker.sid NOT IN
 *   task.do_not_contact` holds for a task without a do_not_contact list.
 * - `x CONTAINS s`: string x contains substring s, or array x has an element equal to s.
 *
 * Thread safety: an expr_t is immutable after expr_parse; any number of threads may call
 * expr_eval on the same expression concurrently.
 *
 * Layer: engine.
 */
#ifndef TASSA_EXPR_H
#define TASSA_EXPR_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* Longest source expr_parse accepts, in bytes (without the NUL). */
#define EXPR_MAX_LEN 4096
/* Deepest nesting of parentheses and NOTs expr_parse accepts. */
#define EXPR_MAX_DEPTH 64

/* A compiled expression. Opaque; immutable once parsed. */
typedef struct expr expr_t;

/* Parses the NUL-terminated src. Returns the compiled expression (the caller frees it with
 * expr_free), or NULL with em (when non-NULL) set to "<what> at position N", N a 0-based byte
 * offset into src, e.g. "expected ')' at position 14", "unterminated string at position 3",
 * "unknown operator 'LIKE' at position 9". Inputs longer than EXPR_MAX_LEN bytes or nested
 * deeper than EXPR_MAX_DEPTH are rejected with such a message. Out of memory also returns
 * NULL, with em "out of memory". src is copied; the caller keeps it. */
expr_t *expr_parse(const char *src, errmsg_t *em);

/* Frees e and everything it owns. Accepts NULL. */
void expr_free(expr_t *e);

/* Where identifiers resolve. `task.a.b` resolves a.b in task and `worker.a.b` resolves a.b
 * in worker, each only when that pointer is non-NULL; otherwise the whole dotted name
 * (task.a.b) resolves in subject. Any other identifier resolves in subject. A worker object
 * should carry sid, friendly_name, activity_name and activity_sid as ordinary members;
 * special values such as taskrouter.dayOfWeek are likewise ordinary members the caller puts
 * in subject. Every pointer is borrowed and may be NULL (then nothing resolves in it). */
typedef struct {
    const json_t *subject;
    const json_t *task;
    const json_t *worker;
} expr_ctx_t;

/* Evaluates e against ctx: true when the expression holds. Never fails and never allocates:
 * a missing key is NULL, and comparisons follow the rules at the top of this file. With a
 * NULL ctx no identifier resolves; a NULL e is false. */
bool expr_eval(const expr_t *e, const expr_ctx_t *ctx);

/* The expression's source text as parsed. Borrowed: valid until e is freed. */
const char *expr_source(const expr_t *e);

#endif
