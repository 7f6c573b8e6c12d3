/* test_config.c - settings precedence (flag > environment > .env) and clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/config.h"

static char dotenv[64];

static void write_dotenv(const char *text)
{
    snprintf(dotenv, sizeof dotenv, "/tmp/tassa-test-env-XXXXXX");
    int fd = mkstemp(dotenv);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void defaults(void **state)
{
    unsetenv("PORT");
    config_t *c = config_load("", NULL);
    assert_non_null(c);
    assert_int_equal(c->port, 3000);
    assert_string_equal(c->sync_service_sid, "default");
    assert_string_equal(c->data_path, "./tassa.db");
    assert_int_equal(c->backend, BACKEND_EMBEDDED);
    assert_true(c->verify_signature);
    assert_null(c->jwt_secret);
    config_free(c);
}

static void dotenv_then_environment_then_flags(void **state)
{
    write_dotenv("# comment\nexport PORT=4000\nJWT_SECRET=\"from-dotenv\"\n"
                 "SYNC_SERVICE_SID='ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n\nAUTH_TOKEN=dot\n");
    setenv("AUTH_TOKEN", "from-env", 1);
    unsetenv("PORT");
    config_t *c = config_load(dotenv, NULL);
    assert_non_null(c);
    assert_int_equal(c->port, 4000);
    assert_string_equal(c->jwt_secret, "from-dotenv");
    assert_string_equal(c->sync_service_sid, "ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(c->auth_token, "from-env"); /* the environment beats .env */
    assert_int_equal(config_apply_flag(c, "--port", "5000", NULL), TASSA_OK);
    assert_int_equal(c->port, 5000); /* a flag beats both */
    assert_int_equal(config_apply_flag(c, "--demo", NULL, NULL), TASSA_OK);
    assert_true(c->demo);
    config_free(c);
    unsetenv("AUTH_TOKEN");
    unlink(dotenv);
}

static void bad_values_are_named(void **state)
{
    errmsg_t em = {{0}};
    setenv("PORT", "70000", 1);
    assert_null(config_load("", &em));
    assert_non_null(strstr(em.text, "PORT"));
    setenv("PORT", "3000", 1);
    setenv("TASSA_BACKEND", "cloud", 1);
    assert_null(config_load("", &em));
    assert_non_null(strstr(em.text, "TASSA_BACKEND"));
    unsetenv("TASSA_BACKEND");
    write_dotenv("JUST A LINE\n");
    assert_null(config_load(dotenv, &em));
    assert_non_null(strstr(em.text, "line 1"));
    unlink(dotenv);
    config_t *c = config_load("", NULL);
    assert_int_equal(config_apply_flag(c, "--nope", "1", &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "--nope"));
    assert_int_equal(config_apply_flag(c, "--port", NULL, &em), TASSA_EINVAL);
    config_free(c);
    unsetenv("PORT");
}

static void twilio_backend_needs_credentials(void **state)
{
    errmsg_t em = {{0}};
    setenv("TASSA_BACKEND", "twilio", 1);
    config_t *c = config_load("", NULL);
    assert_non_null(c);
    assert_int_equal(config_validate(c, &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "ACCOUNT_SID"));
    config_fill_secret(&c->account_sid, "ACnot-a-sid");
    assert_int_equal(config_validate(c, &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "ACCOUNT_SID must be AC"));
    config_fill_secret(&c->account_sid, "AC0123456789abcdef0123456789abcdef");
    config_fill_secret(&c->api_key, "SK0123456789abcdef0123456789abcdef");
    config_fill_secret(&c->api_secret, "secret");
    assert_int_equal(config_validate(c, &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "WORKSPACE_SID"));
    config_fill_secret(&c->workspace_sid, "WS0123456789abcdef0123456789abcdef");
    assert_int_equal(config_validate(c, &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "JWT_SECRET"));
    config_fill_secret(&c->jwt_secret, "caller-secret");
    assert_int_equal(config_validate(c, &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "AUTH_TOKEN"));
    c->verify_signature = false; /* an explicit choice, logged at start */
    assert_int_equal(config_validate(c, &em), TASSA_OK);
    c->verify_signature = true;
    config_fill_secret(&c->auth_token, "token");
    assert_int_equal(config_validate(c, &em), TASSA_OK);
    config_free(c);
    unsetenv("TASSA_BACKEND");
}

/* The settings table: each example value loads, each number outside its range is refused
 * with the setting's name, and each flag maps to its setting. */
static void every_setting_of_the_table(void **state)
{
    errmsg_t em = {{0}};
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        assert_non_null(s->meaning);
        assert_non_null(s->example);
        setenv(s->name, s->example, 1);
        config_t *c = config_load("", &em);
        if (!c)
            fail_msg("%s=%s: %s", s->name, s->example, em.text);
        config_free(c);
        if (s->kind == SETTING_INT || s->kind == SETTING_SIZE) {
            char v[32];
            snprintf(v, sizeof v, "%ld", s->hi + 1);
            setenv(s->name, v, 1);
            assert_null(config_load("", &em));
            assert_non_null(strstr(em.text, s->name));
        }
        unsetenv(s->name);
        if (s->flag) {
            assert_ptr_equal(config_setting_find(s->flag), s);
            c = config_load("", NULL);
            assert_int_equal(
                config_apply_flag(c, s->flag, s->kind == SETTING_BOOL ? NULL : s->example, &em),
                TASSA_OK);
            config_free(c);
        }
    }
    config_t *c = config_load("", NULL);
    assert_int_equal(config_apply_flag(c, "--prot", "1", &em), TASSA_EINVAL);
    assert_non_null(strstr(em.text, "did you mean --port?"));
    config_free(c);
    const char *cands[] = {"serve", "backup", "credentials"};
    assert_string_equal(config_suggest("serv", cands, 3), "serve");
    assert_string_equal(config_suggest("bakup", cands, 3), "backup");
    assert_null(config_suggest("zzzzzz", cands, 3));
}

/* Found by fuzz/fuzz_dotenv.c: a line longer than the read buffer was read as two lines, so
 * its tail could set another setting. Such a line is now refused by number. */
static void long_dotenv_line_is_refused(void **state)
{
    size_t pad = 8189;
    char *text = malloc(pad + 64);
    errmsg_t em = {{0}};
    assert_non_null(text);
    memcpy(text, "X=", 2);
    memset(text + 2, 'a', pad);
    strcpy(text + 2 + pad, "API_KEY=smuggled\n");
    write_dotenv(text);
    free(text);
    config_t *c = config_load(dotenv, &em);
    if (c)
        assert_null(c->api_key); /* never the tail of another line */
    assert_null(c);
    assert_non_null(strstr(em.text, "line 1"));
    unlink(dotenv);
}

/* Found by fuzz/fuzz_dotenv.c (corpus finding_nul_line): a NUL byte in a long line hid its
 * length, and the tail after the read buffer was read as a line of its own. */
static void dotenv_line_with_nul_is_refused(void **state)
{
    static const char head[] = "X=aa\0\0 aa";
    size_t pad = 8180;
    errmsg_t em = {{0}};
    snprintf(dotenv, sizeof dotenv, "/tmp/tassa-test-env-XXXXXX");
    int fd = mkstemp(dotenv);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fwrite(head, 1, sizeof head - 1, f);
    for (size_t i = 0; i < pad; i++)
        fputc('a', f);
    fputs("API_KEY=smuggled\n", f);
    fclose(f);
    config_t *c = config_load(dotenv, &em);
    if (c)
        assert_null(c->api_key);
    assert_null(c);
    assert_non_null(strstr(em.text, "line 1"));
    unlink(dotenv);
}

/* Found by fuzz/fuzz_dotenv.c: with no environment at all (environ NULL after clearenv, as
 * some supervisors start a process) config_load dereferenced NULL. */
static void no_environment_at_all(void **state)
{
    extern char **environ;
    char **saved = environ;
    environ = NULL;
    config_t *c = config_load("", NULL);
    environ = saved;
    assert_non_null(c);
    assert_int_equal(c->port, 3000);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(dotenv_then_environment_then_flags),
        cmocka_unit_test(bad_values_are_named),
        cmocka_unit_test(twilio_backend_needs_credentials),
        cmocka_unit_test(every_setting_of_the_table),
        cmocka_unit_test(long_dotenv_line_is_refused),
        cmocka_unit_test(dotenv_line_with_nul_is_refused),
        cmocka_unit_test(no_environment_at_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
