/* test_expr.c - unit tests for the TaskRouter expression language (engine/taskrouter/expr). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/expr.h"

/* One subject shared by most cases: a task's attributes. */
static const char *subject_text =
    "{\"language\":\"en\",\"skill_rating\":5.5,\"level\":3,\"neg\":-2,\"count\":0,"
    "\"skills\":[\"support\",\"sales\"],\"languages\":[\"english\",\"french\"],"
    "\"langs\":[\"en\",\"fr\",\"de\"],\"ids\":[1,2.0,3],\"name\":\"Alice Smith\","
    "\"vip\":true,\"blocked\":false,\"t\":true,\"f\":false,\"nothing\":null,"
    "\"a\":{\"b\":{\"c\":42}},\"items\":[{\"id\":1},{\"id\":2}],\"matrix\":[[1,2],[3,4]],"
    "\"quote\":\"it's\",\"dq\":\"a\\\"b\",\"nl\":\"x\\ny\",\"empty\":\"\",\"str3\":\"3\","
    "\"big\":9007199254740993,\"task\":{\"in\":1,\"x\":\"subject\"},"
    "\"worker\":{\"sid\":\"WKsubject\"},\"obj\":{\"k\":1}}";

typedef struct {
    const char *src;
    bool want;
} eval_case_t;

/* Parses src (failing the test with the parser's message if it does not parse), evaluates it
 * against ctx and compares with want. */
static void check_ctx(const char *src, const expr_ctx_t *ctx, bool want)
{
    errmsg_t em = {{0}};
    expr_t *e = expr_parse(src, &em);
    bool got;

    if (e == NULL)
        fail_msg("parse of <%s> failed: %s", src, em.text);
    assert_string_equal(expr_source(e), src);
    got = expr_eval(e, ctx);
    expr_free(e);
    if (got != want)
        fail_msg("<%s>: got %s, want %s", src, got ? "true" : "false", want ? "true" : "false");
}

/* Runs a table of cases against the shared subject. */
static void check_table(const eval_case_t *cases, size_t n)
{
    json_t *subject = json_loads(subject_text, 0, NULL);
    expr_ctx_t ctx = {.subject = subject};

    assert_non_null(subject);
    for (size_t i = 0; i < n; i++)
        check_ctx(cases[i].src, &ctx, cases[i].want);
    json_decref(subject);
}

#define CHECK_TABLE(cases) check_table(cases, sizeof(cases) / sizeof(cases[0]))

/* Expects src to be rejected with exactly the message msg. */
static void check_error(const char *src, const char *msg)
{
    errmsg_t em = {{0}};
    expr_t *e = expr_parse(src, &em);

    if (e != NULL) {
        expr_free(e);
        fail_msg("<%s> parsed, want error \"%s\"", src, msg);
    }
    if (strcmp(em.text, msg) != 0)
        fail_msg("<%s>: error \"%s\", want \"%s\"", src, em.text, msg);
}

static void test_equality(void **state)
{
    static const eval_case_t cases[] = {
        {"1 == 1", true},
        {"1==1", true},
        {"1 == 2", false},
        {"0 != 1", true},
        {"1 != 1", false},
        {"language == 'en'", true},
        {"language == \"en\"", true},
        {"language == 'fr'", false},
        {"language == 'EN'", false}, /* case-sensitive */
        {"language = 'en'", true},   /* single = */
        {"language = 'fr'", false},
        {"language != 'fr'", true},
        {"language != 'en'", false},
        {"'en' == language", true},
        {"level == 3", true},
        {"level == 3.0", true}, /* int vs real */
        {"level != 3.0", false},
        {"vip == true", true},
        {"vip == false", false},
        {"blocked == false", true},
        {"vip != false", true},
        {"langs == ['en', 'fr', 'de']", true},
        {"langs == ['en', 'fr']", false},
        {"langs != ['en']", true},
        {"obj == obj", true},
        {"big == 9007199254740993", true}, /* integers compare exactly */
        {"big == 9007199254740992", false},
        {"name == \"Alice Smith\"", true},
    };
    CHECK_TABLE(cases);
}

static void test_ordering(void **state)
{
    static const eval_case_t cases[] = {
        {"level > 2", true},           {"level > 3", false},
        {"level < 4", true},           {"level < 3", false},
        {"level >= 3", true},          {"level >= 4", false},
        {"level <= 3", true},          {"level <= 2", false},
        {"skill_rating >= 5.1", true}, {"skill_rating > 5.5", false},
        {"skill_rating < 6", true},    {"neg == -2", true},
        {"neg < -1.5", true},          {"neg > -1", false},
        {"level > -1", true},          {"level>-1", true},
        {"count == 0", true},          {"1e2 == 100", true},
        {"2.5E-1 < 0.3", true},        {"name < 'Bob'", true}, /* byte order */
        {"name > 'Bob'", false},       {"'abc' > 'ab'", true},
        {"'ab' < 'abc'", true},        {"'B' < 'a'", true},
        {"'a' <= 'a'", true},          {"'a' >= 'b'", false},
        {"empty < 'a'", true},
    };
    CHECK_TABLE(cases);
}

static void test_has(void **state)
{
    static const eval_case_t cases[] = {
        {"skills HAS 'support'", true},
        {"skills HAS 'billing'", false},
        {"skills has 'sales'", true},
        {"ids HAS 2", true}, /* 2 vs 2.0 */
        {"ids HAS 4", false},
        {"ids HAS '1'", false},
        {"language HAS 'en'", false}, /* not an array */
        {"missing HAS 'x'", false},
        {"['a', 'b'] HAS 'b'", true},
        {"(skills HAS 'support') AND (languages HAS 'english')", true},
        {"(skills HAS 'support') AND (languages HAS 'german')", false},
    };
    CHECK_TABLE(cases);
}

static void test_in(void **state)
{
    static const eval_case_t cases[] = {
        {"language IN [\"en\",\"es\"]", true},
        {"language IN ['de', 'es']", false},
        {"language IN['en']", true},
        {"language IN []", false},
        {"level IN [1, 2, 3]", true},
        {"level IN [1.0, 3.0]", true},
        {"level IN ['3']", false},
        {"'fr' IN langs", true}, /* array-valued identifier as the list */
        {"'it' IN langs", false},
        {"languages IN ['french', 'x']", true}, /* any element of an array value */
        {"languages IN ['x', 'y']", false},
        {"language IN language", false}, /* list is not an array */
        {"missing IN ['en']", false},
        {"nothing IN [null]", false},
        {"language NOT IN ['de']", true},
        {"language NOT IN ['en', 'de']", false},
        {"languages NOT IN ['french']", false},
        {"language not in ['de']", true},
        {"missing NOT IN ['en']", true}, /* Twilio: a missing key is NOT IN any list */
        {"nothing NOT IN ['en']", true},
        {"language NOT IN missing_list", true},
        {"NOT language IN ['de']", true},
        {"NOT language IN ['en']", false},
    };
    CHECK_TABLE(cases);
}

static void test_contains(void **state)
{
    static const eval_case_t cases[] = {
        {"name CONTAINS 'Smith'", true},
        {"name CONTAINS 'smith'", false},
        {"name CONTAINS 'Alice Smith'", true},
        {"name CONTAINS 'Alice Smith!'", false},
        {"name CONTAINS ''", true},
        {"skills CONTAINS 'sales'", true},
        {"skills CONTAINS 'sal'", false},
        {"ids contains 3", true},
        {"level CONTAINS 3", false},
        {"name CONTAINS 1", false},
        {"missing CONTAINS 'a'", false},
        {"name CONTAINS missing", false},
    };
    CHECK_TABLE(cases);
}

static void test_booleans_and_logic(void **state)
{
    static const eval_case_t cases[] = {
        {"true", true},
        {"false", false},
        {"TRUE", true},
        {"vip", true},
        {"blocked", false},
        {"level", false}, /* a lone identifier holds only when it is boolean true */
        {"language", false},
        {"missing", false},
        {"NOT blocked", true},
        {"NOT vip", false},
        {"NOT NOT vip", true},
        {"NOT missing", true},
        {"t AND t", true},
        {"t AND f", false},
        {"f OR t", true},
        {"f OR f", false},
        {"t OR f AND f", true}, /* AND binds tighter than OR */
        {"(t OR f) AND f", false},
        {"f AND f OR t", true},
        {"f AND (f OR t)", false},
        {"NOT t OR t", true}, /* NOT binds tighter than OR */
        {"NOT (t OR t)", false},
        {"NOT f AND t", true},
        {"NOT (t AND f)", true},
        {"t AND t AND t AND f", false},
        {"f OR f OR f OR t", true},
        {"(1 == 1) == true", true},
        {"(1 == 2) == true", false},
        {"(1 == 2) != (2 == 2)", true},
        {"((((vip))))", true},
        {"language in ['en'] and skills has 'support' or False", true},
        {"language In ['fr'] AnD skills HaS 'support' oR fAlSe", false},
        {"Not vip Or Blocked", false},
    };
    CHECK_TABLE(cases);
}

static void test_paths(void **state)
{
    static const eval_case_t cases[] = {
        {"a.b.c == 42", true},
        {"a.b.c > 42", false},
        {"a.b.missing == 1", false},
        {"a.b.c.d == 1", false}, /* walks through a number */
        {"a.missing.c == 1", false},
        {"langs[1] == 'fr'", true},
        {"langs[0]=='en'", true},
        {"langs[2] == 'de'", true},
        {"langs[3] == 'de'", false},
        {"langs[99999999999999999999999] == 'de'", false},
        {"language[0] == 'e'", false}, /* index into a non-array */
        {"items[1].id == 2", true},
        {"items[0].id == 2", false},
        {"matrix[1][0] == 3", true},
        {"a[0] == 1", false},
        {"task.in == 1", true}, /* keyword after a dot; no task object: resolves in subject */
        {"_x == 1", false},
        {"quote == 'it\\'s'", true},
        {"quote == \"it's\"", true},
        {"dq == \"a\\\"b\"", true},
        {"dq == 'a\"b'", true},
        {"nl == 'x\\ny'", true},
        {"'a\\\\b' CONTAINS '\\\\'", true},
    };
    CHECK_TABLE(cases);
}

static void test_missing_and_mismatch(void **state)
{
    static const eval_case_t cases[] = {
        {"missing == 1", false},    {"missing != 1", true}, /* one side null */
        {"1 != missing", true},     {"missing != missing2", false}, {"missing == missing2", false},
        {"missing > 1", false},     {"missing < 1", false},         {"missing >= 1", false},
        {"missing <= 1", false},    {"nothing == null", false}, /* any comparison with NULL is false
                                                                 */
        {"nothing != null", false}, {"language != null", true},     {"nothing != 1", true},
        {"language == 1", false},   {"language != 1", false}, /* mismatched types: false even for !=
                                                               */
        {"level == '3'", false},    {"str3 == 3", false},           {"str3 != 3", false},
        {"level > 'a'", false},     {"level < 'a'", false},         {"vip == 1", false},
        {"vip > false", false},     {"skills == 'support'", false}, {"skills > 1", false},
        {"obj > obj", false},       {"langs < langs", false},
    };
    CHECK_TABLE(cases);
}

static void test_task_worker_prefixes(void **state)
{
    json_t *subject = json_loads(subject_text, 0, NULL);
    json_t *task = json_loads("{\"do_not_contact\":[\"WK1\",\"WK3\"],\"x\":\"task\","
                              "\"preferred\":[\"WK2\"],\"lang\":\"en\"}",
                              0, NULL);
    json_t *worker1 = json_loads("{\"sid\":\"WK1\",\"friendly_name\":\"Alice\","
                                 "\"activity_name\":\"Available\",\"languages\":[\"en\"]}",
                                 0, NULL);
    json_t *worker2 = json_loads("{\"sid\":\"WK2\",\"activity_name\":\"Busy\"}", 0, NULL);
    json_t *bare_task = json_loads("{\"x\":1}", 0, NULL);

    assert_non_null(subject);
    assert_non_null(task);
    assert_non_null(worker1);
    assert_non_null(worker2);
    assert_non_null(bare_task);
    {
        expr_ctx_t c1 = {.subject = worker1, .task = task, .worker = worker1};
        expr_ctx_t c2 = {.subject = worker2, .task = task, .worker = worker2};
        expr_ctx_t c3 = {.subject = worker2, .task = bare_task, .worker = worker2};
        expr_ctx_t c4 = {.subject = subject}; /* no task, no worker: fall back to subject */
        expr_ctx_t c5 = {.subject = subject, .task = task};

        check_ctx("worker.sid NOT IN task.do_not_contact", &c1, false);
        check_ctx("worker.sid NOT IN task.do_not_contact", &c2, true);
        check_ctx("worker.sid not in task.do_not_contact", &c3, true); /* list missing */
        check_ctx("worker.sid IN task.preferred", &c2, true);
        check_ctx("worker.sid IN task.preferred", &c1, false);
        check_ctx("task.lang IN worker.languages", &c1, true);
        check_ctx("worker.activity_name == 'Available'", &c1, true);
        check_ctx("worker.friendly_name == 'Alice'", &c1, true);
        check_ctx("activity_name == 'Busy'", &c2, true); /* plain name: subject */
        check_ctx("task.x == 'task'", &c1, true);
        check_ctx("task.x == 'subject'", &c4, true);
        check_ctx("task.x == 'task'", &c5, true);
        check_ctx("worker.sid == 'WKsubject'", &c4, true);
        check_ctx("worker.sid == 'WKsubject'", &c5, true); /* worker NULL: subject */
        check_ctx("task.in == 1", &c5, false);             /* task given: looked up there */
    }
    json_decref(subject);
    json_decref(task);
    json_decref(worker1);
    json_decref(worker2);
    json_decref(bare_task);
}

static void test_twilio_examples(void **state)
{
    json_t *en = json_loads("{\"language\":\"en\",\"skill_rating\":5.2,"
                            "\"skills\":[\"support\"],\"languages\":[\"english\"]}",
                            0, NULL);
    json_t *fr = json_loads("{\"language\":\"fr\",\"skill_rating\":5.0}", 0, NULL);
    json_t *es = json_loads("{\"language\":\"es\",\"skill_rating\":9}", 0, NULL);
    expr_ctx_t cen = {.subject = en}, cfr = {.subject = fr}, ces = {.subject = es};
    const char *x = "(language == \"en\" OR language == \"fr\") AND skill_rating >= 5.1";

    check_ctx(x, &cen, true);
    check_ctx(x, &cfr, false);
    check_ctx(x, &ces, false);
    check_ctx("skills HAS 'support'", &cen, true);
    check_ctx("skills HAS 'support'", &cfr, false);
    check_ctx("language IN [\"en\",\"es\"]", &cen, true);
    check_ctx("language IN [\"en\",\"es\"]", &ces, true);
    check_ctx("language IN [\"en\",\"es\"]", &cfr, false);
    check_ctx("(skills HAS 'support') AND (languages HAS 'english')", &cen, true);
    check_ctx("1 == 1", &cfr, true);
    check_ctx("0 != 1", &cfr, true);
    json_decref(en);
    json_decref(fr);
    json_decref(es);
}

static void test_null_ctx(void **state)
{
    expr_t *e = expr_parse("1 == 1", NULL);
    expr_t *m = expr_parse("missing NOT IN [1]", NULL);
    expr_t *k = expr_parse("missing == 1", NULL);
    expr_ctx_t empty = {0};

    assert_non_null(e);
    assert_non_null(m);
    assert_non_null(k);
    assert_true(expr_eval(e, NULL));
    assert_true(expr_eval(m, NULL));
    assert_false(expr_eval(k, NULL));
    assert_true(expr_eval(m, &empty));
    assert_false(expr_eval(NULL, &empty));
    assert_null(expr_source(NULL));
    expr_free(e);
    expr_free(m);
    expr_free(k);
    expr_free(NULL);
}

static void test_errors(void **state)
{
    check_error("(a == 1", "expected ')' at position 7");
    check_error("((a == 1)", "expected ')' at position 9");
    check_error("(a == 1 b)", "expected ')' at position 8");
    check_error("a == 1)", "unexpected ')' at position 6");
    check_error(")", "expected operand at position 0");
    check_error("()", "expected operand at position 1");
    check_error("name == 'abc", "unterminated string at position 8");
    check_error("name == \"abc\\\"", "unterminated string at position 8");
    check_error("name == 'abc\\", "unterminated string at position 8");
    check_error("'", "unterminated string at position 0");
    check_error("a == 1 b", "unexpected 'b' at position 7");
    check_error("a == 1 == 1", "unexpected '==' at position 7");
    check_error("", "empty expression at position 0");
    check_error("   ", "empty expression at position 3");
    check_error("a ==", "expected operand at position 4");
    check_error("== 1", "expected operand at position 0");
    check_error("a == 1 AND", "expected operand at position 10");
    check_error("a == 1 OR OR b", "expected operand at position 10");
    check_error("AND a", "expected operand at position 0");
    check_error("a HAS", "expected operand at position 5");
    check_error("NOT", "expected operand at position 3");
    check_error("a NOT IN", "expected operand at position 8");
    check_error("a NOT b", "expected IN after NOT at position 6");
    check_error("language LIKE 'en'", "unknown operator 'LIKE' at position 9");
    check_error("a ! b", "unknown operator '!' at position 2");
    check_error("a <> b", "expected operand at position 3");
    check_error("a === b", "expected operand at position 4");
    check_error("5", "expected operator at position 1");
    check_error("'abc' AND vip", "expected operator at position 6");
    check_error("null", "expected operator at position 4");
    check_error("[1, 2]", "expected operator at position 6");
    check_error("a 'x'", "expected operator at position 2");
    check_error("vip (a)", "expected operator at position 4");
    check_error("skill-level == 5", "hyphens are not supported in identifiers at position 5");
    check_error("task.skill-level == 5", "hyphens are not supported in identifiers at position 10");
    check_error("a == @", "unexpected character '@' at position 5");
    check_error("a == \x01", "unexpected byte 0x01 at position 5");
    check_error("x IN [1, 2", "expected ']' at position 10");
    check_error("x IN [1 2]", "expected ']' at position 8");
    check_error("x IN [1,]", "expected constant at position 8");
    check_error("x IN [,]", "expected constant at position 6");
    check_error("x IN [a]", "expected constant at position 6");
    check_error("x IN [[1]]", "expected constant at position 6");
    check_error("langs[x] == 1", "expected index at position 6");
    check_error("langs[-1] == 1", "expected index at position 6");
    check_error("langs[1 == 1", "expected ']' at position 7");
    check_error("a. == 1", "expected identifier after '.' at position 2");
    check_error("a.b. == 1", "expected identifier after '.' at position 4");
    check_error("1abc == 1", "invalid number at position 0");
    check_error("a == 1.2.3", "invalid number at position 5");
    check_error("a == 1.", "invalid number at position 5");
    check_error("a == 1e999", "number out of range at position 5");
    check_error("a == - 1", "unexpected character '-' at position 5");
    check_error("a == 1 AND (b == 2 OR (c == 3)", "expected ')' at position 30");
    check_error("(((a == 1))))", "unexpected ')' at position 12");
    /* messages never carry raw bytes, and long tokens are cut */
    check_error("a == 1 '\xc3\xa9\x01'", "unexpected ''?\?\?'' at position 7");
    check_error("a == 1 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
                "unexpected ''aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' at position 7");
    assert_null(expr_parse("(", NULL)); /* em may be NULL */
    assert_null(expr_parse(NULL, NULL));
}

/* Builds "((( ... inner ... )))" with n pairs. */
static char *nested(int n, const char *inner)
{
    size_t len = strlen(inner) + 2 * (size_t)n + 1;
    char *s = malloc(len);

    assert_non_null(s);
    memset(s, '(', (size_t)n);
    strcpy(s + n, inner);
    memset(s + n + strlen(inner), ')', (size_t)n);
    s[len - 1] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    char *ok = nested(EXPR_MAX_DEPTH, "vip");
    char *deep = nested(EXPR_MAX_DEPTH + 1, "vip");
    char *very_deep = nested(2000, "vip");
    char nots[4 * (EXPR_MAX_DEPTH + 1) + 8];
    json_t *subject = json_loads(subject_text, 0, NULL);
    expr_ctx_t ctx = {.subject = subject};

    check_ctx(ok, &ctx, true);
    check_error(deep, "nesting deeper than 64 levels at position 64");
    check_error(very_deep, "nesting deeper than 64 levels at position 64");

    nots[0] = '\0';
    for (int i = 0; i < EXPR_MAX_DEPTH; i++)
        strcat(nots, "NOT ");
    strcat(nots, "vip");
    check_ctx(nots, &ctx, true); /* an even number of NOTs */
    nots[0] = '\0';
    for (int i = 0; i < EXPR_MAX_DEPTH + 1; i++)
        strcat(nots, "NOT ");
    strcat(nots, "vip");
    check_error(nots, "nesting deeper than 64 levels at position 256");
    free(ok);
    free(deep);
    free(very_deep);
    json_decref(subject);
}

static void test_length_limit(void **state)
{
    char *src = malloc(EXPR_MAX_LEN + 2);
    char *chain = malloc(EXPR_MAX_LEN + 1);
    size_t n = 0;
    json_t *subject = json_loads(subject_text, 0, NULL);
    expr_ctx_t ctx = {.subject = subject};

    assert_non_null(src);
    assert_non_null(chain);
    /* exactly the limit parses */
    memset(src, ' ', EXPR_MAX_LEN);
    memcpy(src, "level == 3", 10);
    src[EXPR_MAX_LEN] = '\0';
    check_ctx(src, &ctx, true);
    /* one byte more does not */
    src[EXPR_MAX_LEN] = ' ';
    src[EXPR_MAX_LEN + 1] = '\0';
    check_error(src, "expression longer than 4096 bytes at position 4096");

    /* a long flat chain costs no recursion */
    while (n + 6 + 2 < EXPR_MAX_LEN) {
        memcpy(chain + n, "t AND ", 6);
        n += 6;
    }
    memcpy(chain + n, "t", 2);
    check_ctx(chain, &ctx, true);
    chain[n] = 'f';
    check_ctx(chain, &ctx, false);
    free(src);
    free(chain);
    json_decref(subject);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equality),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_has),
        cmocka_unit_test(test_in),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_booleans_and_logic),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_missing_and_mismatch),
        cmocka_unit_test(test_task_worker_prefixes),
        cmocka_unit_test(test_twilio_examples),
        cmocka_unit_test(test_null_ctx),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
