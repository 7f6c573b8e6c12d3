/* expr.c - TaskRouter's expression language: a recursive-descent parser and an evaluator.
 *
 * expr_parse runs a small on-demand lexer (one token of lookahead, each token remembering its
 * byte offset for error messages) under a recursive-descent parser that follows the grammar
 * in expr.h and builds an AST. AND and OR chains become one n-ary node, so recursion depth
 * in the parser, the evaluator and expr_free is bounded by the nesting of parentheses and
 * NOTs, which the parser caps at EXPR_MAX_DEPTH. Constants are jansson values owned by the
 * AST, so the evaluator compares constants and looked-up attributes with one set of rules
 * and never allocates: a parenthesised sub-expression used as an operand yields the static
 * json_true()/json_false(). A path such as `task.langs[1]` is kept as pre-split segments
 * (keys point into one owned copy of the path text).
 *
 * Layer: engine.
 */
#include "engine/taskrouter/expr.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_END,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
    T_EQ,
    T_NE,
    T_LT,
    T_GT,
    T_LE,
    T_GE,
    T_STRING,
    T_NUMBER,
    T_PATH,
    T_AND,
    T_OR,
    T_NOT,
    T_HAS,
    T_IN,
    T_CONTAINS,
    T_TRUE,
    T_FALSE,
    T_NULL,
} tok_kind;

typedef struct {
    tok_kind kind;
    size_t start, end; /* byte range in the source */
} token_t;

typedef enum {
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_HAS,
    OP_IN,
    OP_NOT_IN,
    OP_CONTAINS,
} op_t;

typedef enum {
    N_OR,    /* kids: 2 or more */
    N_AND,   /* kids: 2 or more */
    N_NOT,   /* kids: 1 */
    N_CMP,   /* kids: lhs, rhs operands; op */
    N_TRUTH, /* kids: 1 operand standing alone */
    N_CONST, /* value */
    N_PATH,  /* segs, root */
} node_kind;

typedef enum { ROOT_SUBJECT, ROOT_TASK, ROOT_WORKER } root_t;

typedef struct {
    const char *key; /* NULL for an index segment; points into node->text */
    size_t index;
} seg_t;

typedef struct node {
    node_kind kind;
    op_t op;
    struct node **kids; /* owned */
    size_t nkids;
    json_t *value; /* owned reference */
    char *text;    /* owned copy of the path, keys separated by NULs */
    seg_t *segs;   /* owned */
    size_t nsegs;
    root_t root;
} node_t;

struct expr {
    char *source;
    node_t *root;
};

typedef struct {
    const char *src;
    size_t len;
    size_t pos; /* next unread byte */
    token_t tok;
    int depth;
    errmsg_t *em;
} parser_t;

static const struct {
    const char *word;
    tok_kind kind;
} keywords[] = {
    {"and", T_AND},           {"or", T_OR},     {"not", T_NOT},     {"has", T_HAS},   {"in", T_IN},
    {"contains", T_CONTAINS}, {"true", T_TRUE}, {"false", T_FALSE}, {"null", T_NULL},
};

static node_t *parse_or(parser_t *p);

/* ASCII-only classes, so that the locale never changes what an identifier is. */
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(int c)
{
    return is_ident_start(c) || is_digit(c);
}

/* The byte at i, or 0 past the end, so the lexer may look ahead without bounds checks. */
static int at(const parser_t *p, size_t i)
{
    return i < p->len ? (unsigned char)p->src[i] : 0;
}

/* Reports a syntax error. Always returns NULL so parse functions can `return fail(...)`. */
static void *fail(parser_t *p, size_t pos, const char *what)
{
    err_set(p->em, TASSA_EEXPR, "%s at position %zu", what, pos);
    return NULL;
}

/* fail() for the lexer, whose functions answer true/false. */
static bool lex_fail(parser_t *p, size_t pos, const char *what)
{
    fail(p, pos, what);
    return false;
}

/* Out of memory is not the input's fault; say so instead of blaming a position. */
static void *fail_nomem(parser_t *p)
{
    err_set(p->em, TASSA_ENOMEM, "out of memory");
    return NULL;
}

/* Quotes the current token for a message, cut short so the message fits in errmsg_t. Bytes
 * outside printable ASCII become '?': the message may end up in a JSON error body, and a
 * string token may hold invalid UTF-8. */
static void quote_token(const parser_t *p, char *buf, size_t size)
{
    size_t n = p->tok.end - p->tok.start;
    char text[36];

    if (p->tok.kind == T_END) {
        snprintf(buf, size, "end of input");
        return;
    }
    if (n > 32)
        n = 32;
    for (size_t i = 0; i < n; i++) {
        int c = at(p, p->tok.start + i);
        text[i] = c >= ' ' && c < 0x7f ? (char)c : '?';
    }
    text[n] = '\0';
    snprintf(buf, size, "'%s%s'", text, p->tok.end - p->tok.start > 32 ? "..." : "");
}

/* Lexes a path `a.b[1].c` starting at an identifier character. A single segment that is a
 * keyword becomes that keyword's token instead, so `x IN[1]` and `HAS` work unspaced. */
static bool lex_word(parser_t *p, size_t start)
{
    size_t pos = start;

    while (is_ident(at(p, pos)))
        pos++;
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strlen(keywords[i].word) == pos - start &&
            strncasecmp(keywords[i].word, p->src + start, pos - start) == 0) {
            p->tok.kind = keywords[i].kind;
            p->tok.end = pos;
            p->pos = pos;
            return true;
        }
    }
    for (;;) {
        if (at(p, pos) == '.') {
            if (!is_ident(at(p, pos + 1)))
                return lex_fail(p, pos + 1, "expected identifier after '.'");
            pos++;
            while (is_ident(at(p, pos)))
                pos++;
        } else if (at(p, pos) == '[') {
            pos++;
            if (!is_digit(at(p, pos)))
                return lex_fail(p, pos, "expected index");
            while (is_digit(at(p, pos)))
                pos++;
            if (at(p, pos) != ']')
                return lex_fail(p, pos, "expected ']'");
            pos++;
        } else {
            break;
        }
    }
    if (at(p, pos) == '-' && is_ident(at(p, pos + 1)))
        return lex_fail(p, pos, "hyphens are not supported in identifiers");
    p->tok.kind = T_PATH;
    p->tok.end = pos;
    p->pos = pos;
    return true;
}

/* Lexes -?digits(.digits)?([eE][+-]?digits)?; anything glued on after it is an error so that
 * `1abc` or `1.2.3` never silently means something else. */
static bool lex_number(parser_t *p, size_t start)
{
    size_t pos = start;

    if (at(p, pos) == '-')
        pos++;
    while (is_digit(at(p, pos)))
        pos++;
    if (at(p, pos) == '.' && is_digit(at(p, pos + 1))) {
        pos++;
        while (is_digit(at(p, pos)))
            pos++;
    }
    if (at(p, pos) == 'e' || at(p, pos) == 'E') {
        size_t e = pos + 1;
        if (at(p, e) == '+' || at(p, e) == '-')
            e++;
        if (is_digit(at(p, e))) {
            pos = e;
            while (is_digit(at(p, pos)))
                pos++;
        }
    }
    if (is_ident(at(p, pos)) || at(p, pos) == '.')
        return lex_fail(p, start, "invalid number");
    p->tok.kind = T_NUMBER;
    p->tok.end = pos;
    p->pos = pos;
    return true;
}

/* Finds the end of a quoted string; decoding waits until the parser builds the constant. */
static bool lex_string(parser_t *p, size_t start)
{
    int quote = at(p, start);
    size_t pos = start + 1;

    for (;;) {
        if (pos >= p->len)
            return lex_fail(p, start, "unterminated string");
        if (at(p, pos) == '\\') {
            if (pos + 1 >= p->len)
                return lex_fail(p, start, "unterminated string");
            pos += 2;
        } else if (at(p, pos) == quote) {
            pos++;
            break;
        } else {
            pos++;
        }
    }
    p->tok.kind = T_STRING;
    p->tok.end = pos;
    p->pos = pos;
    return true;
}

/* Moves to the next token. False (with em set) on a lexical error. */
static bool advance(parser_t *p)
{
    size_t pos = p->pos;
    int c;
    char what[64];

    while (at(p, pos) == ' ' || at(p, pos) == '\t' || at(p, pos) == '\n' || at(p, pos) == '\r')
        pos++;
    c = at(p, pos);
    p->tok.start = pos;
    p->tok.end = pos + 1;
    p->pos = pos + 1;
    if (pos >= p->len) {
        p->tok.kind = T_END;
        p->tok.end = pos;
        p->pos = pos;
        return true;
    }
    if (is_ident_start(c))
        return lex_word(p, pos);
    if (is_digit(c) || (c == '-' && is_digit(at(p, pos + 1))))
        return lex_number(p, pos);
    switch (c) {
    case '\'':
    case '"': return lex_string(p, pos);
    case '(': p->tok.kind = T_LPAREN; return true;
    case ')': p->tok.kind = T_RPAREN; return true;
    case '[': p->tok.kind = T_LBRACK; return true;
    case ']': p->tok.kind = T_RBRACK; return true;
    case ',': p->tok.kind = T_COMMA; return true;
    case '=': p->tok.kind = T_EQ; break;
    case '<': p->tok.kind = T_LT; break;
    case '>': p->tok.kind = T_GT; break;
    case '!':
        if (at(p, pos + 1) != '=')
            return lex_fail(p, pos, "unknown operator '!'");
        p->tok.kind = T_NE;
        break;
    default:
        if (c > ' ' && c < 0x7f)
            snprintf(what, sizeof(what), "unexpected character '%c'", c);
        else
            snprintf(what, sizeof(what), "unexpected byte 0x%02x", (unsigned)c);
        return lex_fail(p, pos, what);
    }
    /* = == ! != < <= > >= */
    if (at(p, pos + 1) == '=') {
        if (p->tok.kind == T_LT)
            p->tok.kind = T_LE;
        else if (p->tok.kind == T_GT)
            p->tok.kind = T_GE;
        p->tok.end = pos + 2;
        p->pos = pos + 2;
    }
    return true;
}

/* Frees a node and its subtree; recursion is bounded by EXPR_MAX_DEPTH. */
static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    json_decref(n->value);
    free(n->text);
    free(n->segs);
    free(n);
}

/* A zeroed node, so node_free works on it at any stage of construction. */
static node_t *node_new(parser_t *p, node_kind kind)
{
    node_t *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return fail_nomem(p);
    n->kind = kind;
    return n;
}

/* Appends kid to n. On failure frees kid (n keeps its earlier kids) and sets em. */
static bool add_kid(parser_t *p, node_t *n, node_t *kid)
{
    node_t **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));

    if (kids == NULL) {
        node_free(kid);
        fail_nomem(p);
        return false;
    }
    kids[n->nkids++] = kid;
    n->kids = kids;
    return true;
}

/* Wraps kid in a new node of the given kind; frees kid on failure. */
static node_t *wrap(parser_t *p, node_kind kind, node_t *kid)
{
    node_t *n = node_new(p, kind);

    if (n == NULL) {
        node_free(kid);
        return NULL;
    }
    if (!add_kid(p, n, kid)) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* Decodes the string token: \n \t \r are control characters, any other escaped byte stands
 * for itself. Strings need not be UTF-8 (they are only ever compared bytewise). */
static json_t *string_value(parser_t *p)
{
    char buf[EXPR_MAX_LEN];
    size_t n = 0;
    json_t *v;

    for (size_t i = p->tok.start + 1; i + 1 < p->tok.end; i++) {
        char c = p->src[i];
        if (c == '\\') {
            c = p->src[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        buf[n++] = c;
    }
    v = json_stringn_nocheck(buf, n);
    if (v == NULL)
        return fail_nomem(p);
    return v;
}

/* Converts the number token: an integer when it is one and fits, a real otherwise. strtod
 * reads '.' as the decimal point because tassa never calls setlocale (the "C" locale). */
static json_t *number_value(parser_t *p)
{
    char buf[EXPR_MAX_LEN + 1];
    size_t n = p->tok.end - p->tok.start;
    char *end;
    json_t *v;

    memcpy(buf, p->src + p->tok.start, n);
    buf[n] = '\0';
    if (strcspn(buf, ".eE") == n) {
        long long i;
        errno = 0;
        i = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0') {
            v = json_integer(i);
            return v != NULL ? v : fail_nomem(p);
        }
    }
    {
        double d = strtod(buf, &end);
        if (!isfinite(d))
            return fail(p, p->tok.start, "number out of range");
        v = json_real(d);
    }
    return v != NULL ? v : fail_nomem(p);
}

/* A constant token (string, number, true, false, null) as an owned jansson value, or NULL
 * with em set. The caller has checked the token kind. */
static json_t *constant_value(parser_t *p)
{
    switch (p->tok.kind) {
    case T_STRING: return string_value(p);
    case T_NUMBER: return number_value(p);
    case T_TRUE: return json_true();
    case T_FALSE: return json_false();
    default: return json_null();
    }
}

static bool is_constant(tok_kind k)
{
    return k == T_STRING || k == T_NUMBER || k == T_TRUE || k == T_FALSE || k == T_NULL;
}

/* Parses `[c, c, ...]` of constants into one owned array constant. */
static node_t *parse_list(parser_t *p)
{
    node_t *n = node_new(p, N_CONST);
    json_t *v;

    if (n == NULL)
        return NULL;
    n->value = json_array();
    if (n->value == NULL) {
        fail_nomem(p);
        goto err;
    }
    if (!advance(p))
        goto err;
    while (p->tok.kind != T_RBRACK) {
        if (!is_constant(p->tok.kind)) {
            fail(p, p->tok.start, "expected constant");
            goto err;
        }
        v = constant_value(p);
        if (v == NULL)
            goto err;
        if (json_array_append_new(n->value, v) != 0) { /* steals v even on failure */
            fail_nomem(p);
            goto err;
        }
        if (!advance(p))
            goto err;
        if (p->tok.kind == T_COMMA) {
            if (!advance(p))
                goto err;
            if (p->tok.kind == T_RBRACK) {
                fail(p, p->tok.start, "expected constant");
                goto err;
            }
        } else if (p->tok.kind != T_RBRACK) {
            fail(p, p->tok.start, "expected ']'");
            goto err;
        }
    }
    if (!advance(p))
        goto err;
    return n;
err:
    node_free(n);
    return NULL;
}

/* Splits the path token into segments once, so evaluation only walks them. `task.x` and
 * `worker.x` are marked here; expr_eval decides whether the prefix applies. */
static node_t *parse_path(parser_t *p)
{
    size_t len = p->tok.end - p->tok.start;
    size_t nsegs = 1;
    node_t *n = node_new(p, N_PATH);
    char *s;

    if (n == NULL)
        return NULL;
    n->text = strndup(p->src + p->tok.start, len);
    if (n->text == NULL)
        goto nomem;
    for (size_t i = 0; i < len; i++)
        nsegs += n->text[i] == '.' || n->text[i] == '[';
    n->segs = calloc(nsegs, sizeof(*n->segs));
    if (n->segs == NULL)
        goto nomem;
    s = n->text;
    n->segs[n->nsegs++].key = s;
    while (*s != '\0') {
        if (*s == '.') {
            *s++ = '\0';
            n->segs[n->nsegs++].key = s;
        } else if (*s == '[') {
            size_t index = 0;
            *s++ = '\0';
            for (; is_digit(*s); s++)
                index = index > (SIZE_MAX - 9) / 10 ? SIZE_MAX : index * 10 + (size_t)(*s - '0');
            *s++ = '\0'; /* the ']' */
            n->segs[n->nsegs].key = NULL;
            n->segs[n->nsegs++].index = index;
        } else {
            s++;
        }
    }
    if (n->nsegs >= 2 && n->segs[1].key != NULL) {
        if (strcmp(n->segs[0].key, "task") == 0)
            n->root = ROOT_TASK;
        else if (strcmp(n->segs[0].key, "worker") == 0)
            n->root = ROOT_WORKER;
    }
    if (!advance(p)) {
        node_free(n);
        return NULL;
    }
    return n;
nomem:
    node_free(n);
    return fail_nomem(p);
}

/* operand := constant | list | path | ( or_expr ). A parenthesised expression is returned as
 * its own boolean node; operand_value turns it into true/false. */
static node_t *parse_operand(parser_t *p)
{
    node_t *n;

    switch (p->tok.kind) {
    case T_LPAREN:
        if (++p->depth > EXPR_MAX_DEPTH)
            return fail(p, p->tok.start, "nesting deeper than 64 levels");
        if (!advance(p))
            return NULL;
        n = parse_or(p);
        if (n == NULL)
            return NULL;
        if (p->tok.kind != T_RPAREN) {
            node_free(n);
            return fail(p, p->tok.start, "expected ')'");
        }
        p->depth--;
        if (!advance(p)) {
            node_free(n);
            return NULL;
        }
        return n;
    case T_LBRACK: return parse_list(p);
    case T_PATH: return parse_path(p);
    default:
        if (!is_constant(p->tok.kind))
            return fail(p, p->tok.start, "expected operand");
        n = node_new(p, N_CONST);
        if (n == NULL)
            return NULL;
        n->value = constant_value(p);
        if (n->value == NULL || !advance(p)) {
            node_free(n);
            return NULL;
        }
        return n;
    }
}

/* Maps a comparison token to its operator; false when the token is not one. */
static bool token_op(tok_kind k, op_t *op)
{
    static const struct {
        tok_kind tok;
        op_t op;
    } ops[] = {
        {T_EQ, OP_EQ},   {T_NE, OP_NE}, {T_LT, OP_LT},
        {T_GT, OP_GT},   {T_LE, OP_LE}, {T_GE, OP_GE},
        {T_HAS, OP_HAS}, {T_IN, OP_IN}, {T_CONTAINS, OP_CONTAINS},
    };

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].tok == k) {
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

/* cmp := operand (op operand)?. Gives the precise errors users hit most: a word where an
 * operator belongs (`name LIKE 'x'`) and a constant standing alone (`'abc' AND ...`). */
static node_t *parse_cmp(parser_t *p)
{
    node_t *lhs = parse_operand(p);
    node_t *n = NULL;
    node_t *rhs;
    op_t op;
    char what[96];
    char tok[48];

    if (lhs == NULL)
        return NULL;
    if (p->tok.kind == T_NOT) {
        if (!advance(p))
            goto err;
        if (p->tok.kind != T_IN) {
            fail(p, p->tok.start, "expected IN after NOT");
            goto err;
        }
        op = OP_NOT_IN;
    } else if (!token_op(p->tok.kind, &op)) {
        if (p->tok.kind == T_PATH) {
            quote_token(p, tok, sizeof(tok));
            snprintf(what, sizeof(what), "unknown operator %s", tok);
            fail(p, p->tok.start, what);
            goto err;
        }
        if (is_constant(p->tok.kind) || p->tok.kind == T_LBRACK || p->tok.kind == T_LPAREN ||
            (lhs->kind == N_CONST && !json_is_boolean(lhs->value))) {
            fail(p, p->tok.start, "expected operator");
            goto err;
        }
        return wrap(p, N_TRUTH, lhs);
    }
    if (!advance(p))
        goto err;
    n = node_new(p, N_CMP);
    if (n == NULL)
        goto err;
    n->op = op;
    if (!add_kid(p, n, lhs)) {
        lhs = NULL;
        goto err;
    }
    lhs = NULL;
    rhs = parse_operand(p);
    if (rhs == NULL || !add_kid(p, n, rhs))
        goto err;
    return n;
err:
    node_free(lhs);
    node_free(n);
    return NULL;
}

/* not_expr := NOT not_expr | cmp. Each NOT counts as a nesting level. */
static node_t *parse_not(parser_t *p)
{
    node_t *kid;

    if (p->tok.kind != T_NOT)
        return parse_cmp(p);
    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, p->tok.start, "nesting deeper than 64 levels");
    if (!advance(p))
        return NULL;
    kid = parse_not(p);
    if (kid == NULL)
        return NULL;
    p->depth--;
    return wrap(p, N_NOT, kid);
}

/* Parses `sub (sep sub)*` into one n-ary node of the given kind (or sub alone), so a long
 * chain of ANDs costs no recursion depth. */
static node_t *parse_chain(parser_t *p, tok_kind sep, node_kind kind, node_t *(*sub)(parser_t *))
{
    node_t *first = sub(p);
    node_t *n;
    node_t *kid;

    if (first == NULL || p->tok.kind != sep)
        return first;
    n = wrap(p, kind, first);
    if (n == NULL)
        return NULL;
    while (p->tok.kind == sep) {
        if (!advance(p))
            goto err;
        kid = sub(p);
        if (kid == NULL || !add_kid(p, n, kid))
            goto err;
    }
    return n;
err:
    node_free(n);
    return NULL;
}

/* and_expr := not_expr (AND not_expr)* */
static node_t *parse_and(parser_t *p)
{
    return parse_chain(p, T_AND, N_AND, parse_not);
}

/* or_expr := and_expr (OR and_expr)* */
static node_t *parse_or(parser_t *p)
{
    return parse_chain(p, T_OR, N_OR, parse_and);
}

expr_t *expr_parse(const char *src, errmsg_t *em)
{
    parser_t p = {.src = src, .em = em};
    expr_t *e = NULL;
    char tok[48];
    char what[64];

    if (src == NULL) {
        err_set(em, TASSA_EEXPR, "empty expression at position 0");
        return NULL;
    }
    p.len = strnlen(src, EXPR_MAX_LEN + 1);
    if (p.len > EXPR_MAX_LEN) {
        err_set(em, TASSA_EEXPR, "expression longer than %d bytes at position %d", EXPR_MAX_LEN,
                EXPR_MAX_LEN);
        return NULL;
    }
    if (!advance(&p))
        return NULL;
    if (p.tok.kind == T_END)
        return fail(&p, p.tok.start, "empty expression");
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return fail_nomem(&p);
    e->root = parse_or(&p);
    if (e->root == NULL)
        goto err;
    if (p.tok.kind != T_END) {
        quote_token(&p, tok, sizeof(tok));
        snprintf(what, sizeof(what), "unexpected %s", tok);
        fail(&p, p.tok.start, what);
        goto err;
    }
    e->source = strdup(src);
    if (e->source == NULL) {
        fail_nomem(&p);
        goto err;
    }
    return e;
err:
    expr_free(e);
    return NULL;
}

void expr_free(expr_t *e)
{
    if (e == NULL)
        return;
    node_free(e->root);
    free(e->source);
    free(e);
}

const char *expr_source(const expr_t *e)
{
    return e != NULL ? e->source : NULL;
}

/* ---- evaluation ---- */

typedef enum { C_NULL, C_NUMBER, C_STRING, C_BOOL, C_ARRAY, C_OBJECT } vclass_t;

/* Groups jansson types the way comparisons see them: integer and real are one class, true
 * and false another, and a missing value is C_NULL like JSON null. */
static vclass_t vclass(const json_t *v)
{
    if (v == NULL)
        return C_NULL;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL: return C_NUMBER;
    case JSON_STRING: return C_STRING;
    case JSON_TRUE:
    case JSON_FALSE: return C_BOOL;
    case JSON_ARRAY: return C_ARRAY;
    case JSON_OBJECT: return C_OBJECT;
    default: return C_NULL;
    }
}

/* Orders two numbers; integers exactly, otherwise as doubles. */
static int number_cmp(const json_t *a, const json_t *b)
{
    double x, y;

    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t i = json_integer_value(a), j = json_integer_value(b);
        return (i > j) - (i < j);
    }
    x = json_number_value(a);
    y = json_number_value(b);
    return (x > y) - (x < y);
}

/* Orders two strings by bytes, a prefix first. */
static int string_cmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);

    if (c != 0)
        return c < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
}

/* == for two values: false when either is NULL or their classes differ. */
static bool values_equal(const json_t *a, const json_t *b)
{
    vclass_t ca = vclass(a);

    if (ca == C_NULL || ca != vclass(b))
        return false;
    switch (ca) {
    case C_NUMBER: return number_cmp(a, b) == 0;
    case C_STRING: return string_cmp(a, b) == 0;
    case C_BOOL: return json_is_true(a) == json_is_true(b);
    default: return json_equal(a, b) != 0;
    }
}

/* True when array arr has an element equal to v. */
static bool array_has(const json_t *arr, const json_t *v)
{
    if (!json_is_array(arr) || vclass(v) == C_NULL)
        return false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (values_equal(json_array_get(arr, i), v))
            return true;
    }
    return false;
}

/* v IN list; an array v is in list when any of its elements is. */
static bool in_list(const json_t *v, const json_t *list)
{
    if (!json_is_array(v))
        return array_has(list, v);
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (array_has(list, json_array_get(v, i)))
            return true;
    }
    return false;
}

/* x CONTAINS s: substring for strings, element for arrays. */
static bool contains(const json_t *x, const json_t *s)
{
    if (json_is_string(x) && json_is_string(s)) {
        size_t ls = json_string_length(s);
        return ls == 0 || memmem(json_string_value(x), json_string_length(x), json_string_value(s),
                                 ls) != NULL;
    }
    return array_has(x, s);
}

/* < > <= >=: defined for two numbers or two strings only. */
static bool ordered(op_t op, const json_t *a, const json_t *b)
{
    vclass_t ca = vclass(a);
    int c;

    if (ca != vclass(b) || (ca != C_NUMBER && ca != C_STRING))
        return false;
    if (ca == C_NUMBER && (json_number_value(a) != json_number_value(a) ||
                           json_number_value(b) != json_number_value(b)))
        return false; /* NaN cannot come from JSON, but stay safe */
    c = ca == C_NUMBER ? number_cmp(a, b) : string_cmp(a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_GT: return c > 0;
    case OP_LE: return c <= 0;
    default: return c >= 0;
    }
}

/* Looks a path up: task./worker. prefixes apply only when that object was given. A JSON
 * null found at the end counts as missing. */
static const json_t *resolve(const node_t *n, const expr_ctx_t *ctx)
{
    const json_t *cur = ctx->subject;
    size_t i = 0;

    if (n->root == ROOT_TASK && ctx->task != NULL) {
        cur = ctx->task;
        i = 1;
    } else if (n->root == ROOT_WORKER && ctx->worker != NULL) {
        cur = ctx->worker;
        i = 1;
    }
    for (; i < n->nsegs && cur != NULL; i++) {
        if (n->segs[i].key != NULL)
            cur = json_is_object(cur) ? json_object_get(cur, n->segs[i].key) : NULL;
        else
            cur = json_is_array(cur) ? json_array_get(cur, n->segs[i].index) : NULL;
    }
    return json_is_null(cur) ? NULL : cur;
}

static bool eval_node(const node_t *n, const expr_ctx_t *ctx);

/* The value of an operand: a constant, a looked-up attribute, or a sub-expression's result
 * as the static json_true()/json_false(). NULL means missing. */
static const json_t *operand_value(const node_t *n, const expr_ctx_t *ctx)
{
    switch (n->kind) {
    case N_CONST: return json_is_null(n->value) ? NULL : n->value;
    case N_PATH: return resolve(n, ctx);
    default: return eval_node(n, ctx) ? json_true() : json_false();
    }
}

/* Applies a comparison operator; see expr.h for the rules on NULL and mixed types. */
static bool compare(op_t op, const json_t *a, const json_t *b)
{
    switch (op) {
    case OP_EQ: return values_equal(a, b);
    case OP_NE:
        if (vclass(a) == C_NULL || vclass(b) == C_NULL)
            return vclass(a) != vclass(b);
        return vclass(a) == vclass(b) && !values_equal(a, b);
    case OP_HAS: return array_has(a, b);
    case OP_IN: return in_list(a, b);
    case OP_NOT_IN: return !in_list(a, b);
    case OP_CONTAINS: return contains(a, b);
    default: return ordered(op, a, b);
    }
}

/* Evaluates a boolean node. Recursion is bounded by the parser's depth limit. */
static bool eval_node(const node_t *n, const expr_ctx_t *ctx)
{
    const json_t *v;

    switch (n->kind) {
    case N_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (eval_node(n->kids[i], ctx))
                return true;
        }
        return false;
    case N_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            if (!eval_node(n->kids[i], ctx))
                return false;
        }
        return true;
    case N_NOT: return !eval_node(n->kids[0], ctx);
    case N_CMP:
        return compare(n->op, operand_value(n->kids[0], ctx), operand_value(n->kids[1], ctx));
    case N_TRUTH: v = operand_value(n->kids[0], ctx); return json_is_true(v);
    default: v = operand_value(n, ctx); return json_is_true(v);
    }
}

bool expr_eval(const expr_t *e, const expr_ctx_t *ctx)
{
    static const expr_ctx_t none = {0};

    if (e == NULL || e->root == NULL)
        return false;
    return eval_node(e->root, ctx != NULL ? ctx : &none);
}
