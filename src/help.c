/* help.c - help, manual page, configuration file and README table from the tables.
 *
 * Layer: app. */
#include "help.h"

#include <string.h>

#include "base/config.h"

/* The argument placeholder of a setting's flag ("N", "FILE", ...). */
static const char *flag_arg(const config_setting_t *s)
{
    if (s->kind == SETTING_BOOL)
        return NULL;
    if (s->kind == SETTING_INT || s->kind == SETTING_SIZE)
        return "N";
    if (s->kind == SETTING_ENUM)
        return s->choices;
    return !strcmp(s->name, "TASSA_DATA") ? "FILE" : "ADDR";
}

static const char *shown_default(const config_setting_t *s)
{
    return *s->def ? s->def : "unset";
}

static void print_setting(FILE *f, const config_setting_t *s)
{
    fprintf(f, "  %s", s->name);
    if (s->flag) {
        const char *arg = flag_arg(s);
        fprintf(f, " (%s%s%s)", s->flag, arg ? " " : "", arg ? arg : "");
    }
    fprintf(f, "\n      %s\n      default: %s; example: %s=%s\n", s->meaning, shown_default(s),
            s->name, s->example);
}

void help_command(FILE *f, const help_command_t *cmd)
{
    fprintf(f, "usage: tassa %s%s%s\n\n%s.\n", cmd->name, *cmd->args ? " " : "", cmd->args,
            cmd->summary);
    if (cmd->details)
        fprintf(f, "%s\n", cmd->details);
    fprintf(f, "\nflags:\n");
    for (size_t i = 0; i < cmd->nflags; i++) {
        const help_flag_t *fl = &cmd->flags[i];
        fprintf(f, "  %s%s%s\n      %s\n", fl->flag, fl->arg ? " " : "", fl->arg ? fl->arg : "",
                fl->meaning);
        if (fl->def || fl->example)
            fprintf(f, "      default: %s; example: %s%s%s\n", fl->def ? fl->def : "none", fl->flag,
                    fl->arg ? " " : "", fl->arg ? fl->example : "");
    }
    if (cmd->serve_flags) {
        for (size_t i = 0; i < config_nsettings; i++) {
            const config_setting_t *s = &config_settings[i];
            if (!s->flag)
                continue;
            const char *arg = flag_arg(s);
            fprintf(f, "  %s%s%s\n      %s (setting %s)\n      default: %s; example: %s%s%s\n",
                    s->flag, arg ? " " : "", arg ? arg : "", s->meaning, s->name, shown_default(s),
                    s->flag, arg ? " " : "", arg ? s->example : "");
        }
    }
    fprintf(f, "  --help\n      print this help\n");
    fprintf(f, "\nsettings (environment, then .env in the working directory; flags beat both):\n");
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        bool shown = cmd->all_settings;
        for (size_t j = 0; !shown && cmd->settings && cmd->settings[j]; j++)
            shown = !strcmp(cmd->settings[j], s->name);
        if (shown)
            print_setting(f, s);
    }
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

void help_overview(FILE *f, const help_command_t *cmds, size_t n, const char *version)
{
    fprintf(f, "tassa %s - contact-center task routing and live status\n\nusage:\n", version);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  tassa %s %s\n      %s\n", cmds[i].name, cmds[i].args, cmds[i].summary);
    fprintf(f, "  tassa --version\n      the version of tassa and of the libraries it uses\n"
               "  tassa COMMAND --help\n      the flags and settings of one command\n");
    fprintf(f, "\nsettings (environment, then .env in the working directory; flags beat both):\n");
    for (size_t i = 0; i < config_nsettings; i++)
        print_setting(f, &config_settings[i]);
    fprintf(f, "\nexample:\n  tassa serve --port 3000 --demo\n");
}

/* Writes s for roff: a leading '.' or '\'' is escaped, and every backslash and '-'. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

void help_man(FILE *f, const help_command_t *cmds, size_t n, const char *version)
{
    fprintf(f, ".TH TASSA 1 \"\" \"tassa %s\" \"User Commands\"\n", version);
    fputs(".SH NAME\ntassa \\- contact\\-center task routing and live status\n.SH SYNOPSIS\n", f);
    for (size_t i = 0; i < n; i++) {
        fputs(".B tassa\n", f);
        roff(f, cmds[i].name);
        fputs(" ", f);
        roff(f, cmds[i].args);
        fputs("\n.br\n", f);
    }
    fputs(".SH DESCRIPTION\ntassa serves Twilio's TaskRouter and Sync dialect, the seed's "
          "functions and the queue pages from one self\\-contained binary.\n.SH COMMANDS\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const help_command_t *c = &cmds[i];
        fputs(".SS ", f);
        roff(f, c->name);
        fputs("\n", f);
        roff(f, c->summary);
        fputs(".\n", f);
        if (c->details) {
            roff(f, c->details);
            fputs("\n", f);
        }
        for (size_t j = 0; j < c->nflags; j++) {
            fputs(".TP\n.B ", f);
            roff(f, c->flags[j].flag);
            if (c->flags[j].arg) {
                fputs(" ", f);
                roff(f, c->flags[j].arg);
            }
            fputs("\n", f);
            roff(f, c->flags[j].meaning);
            if (c->flags[j].def) {
                fputs(" (default ", f);
                roff(f, c->flags[j].def);
                fputs(")", f);
            }
            fputs(".\n", f);
        }
        if (c->serve_flags)
            fputs(".TP\nFlags of settings\nEvery setting with a flag in SETTINGS below.\n", f);
        fputs(".PP\nExample:\n.B ", f);
        roff(f, c->example);
        fputs("\n", f);
    }
    fputs(".SH SETTINGS\nSettings come from the environment, then from .env in the working "
          "directory; flags beat both. The systemd unit reads /etc/tassa/tassa.env.\n",
          f);
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        fputs(".TP\n.B ", f);
        roff(f, s->name);
        if (s->flag) {
            fputs(" (", f);
            roff(f, s->flag);
            fputs(")", f);
        }
        fputs("\n", f);
        roff(f, s->meaning);
        fputs(". Default: ", f);
        roff(f, shown_default(s));
        fputs("; example: ", f);
        roff(f, s->example);
        fputs(".\n", f);
    }
    fputs(".SH SIGNALS\nSIGTERM and SIGINT drain: /healthz answers \"draining\", requests in "
          "flight are answered, live streams are told to reconnect, the store and the outbox "
          "are flushed, and tassa exits 0.\n"
          ".SH FILES\n.TP\n/etc/tassa/tassa.env\nthe settings of the systemd unit\n"
          ".TP\n/var/lib/tassa/tassa.db\nthe data file of the systemd unit\n"
          ".SH EXIT STATUS\n0 on success, 1 on a failure, 2 on a usage error.\n",
          f);
}

void help_env_file(FILE *f)
{
    fputs("# /etc/tassa/tassa.env - settings of tassa.service (see tassa(1), tassa --help).\n"
          "# Every setting is listed, commented out, with its default. Uncomment to change.\n"
          "# Generated from tassa's settings table; upgrades keep your edits.\n",
          f);
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        fprintf(f, "\n# %s.\n", s->meaning);
        if (*s->def)
            fprintf(f, "#%s=%s\n", s->name, s->def);
        else if (s->secret)
            fprintf(f, "# (unset by default)\n#%s=\n", s->name);
        else
            fprintf(f, "# (unset by default) e.g.\n#%s=%s\n", s->name, s->example);
    }
}

/* Writes s for a Markdown table cell ('|' escaped). */
static void md(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void help_markdown(FILE *f)
{
    fputs("| name | meaning | default |\n|---|---|---|\n", f);
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        fprintf(f, "| `%s`", s->name);
        if (s->flag)
            fprintf(f, " (`%s`)", s->flag);
        fputs(" | ", f);
        md(f, s->meaning);
        fputs(" | ", f);
        if (*s->def) {
            fputs("`", f);
            md(f, s->def);
            fputs("`", f);
        } else {
            fputs("unset", f);
        }
        fputs(" |\n", f);
    }
}

bool help_accepts(const help_command_t *cmd, const char *flag)
{
    for (size_t i = 0; i < cmd->nflags; i++) {
        if (!strcmp(cmd->flags[i].flag, flag))
            return true;
    }
    const config_setting_t *s = cmd->serve_flags ? config_setting_find(flag) : NULL;
    return s && s->flag;
}

bool help_takes_value(const help_command_t *cmd, const char *flag)
{
    for (size_t i = 0; i < cmd->nflags; i++) {
        if (!strcmp(cmd->flags[i].flag, flag))
            return cmd->flags[i].arg != NULL;
    }
    const config_setting_t *s = config_setting_find(flag);
    return !s || s->kind != SETTING_BOOL;
}

const char *help_suggest_flag(const help_command_t *cmd, const char *flag)
{
    const char *cands[80];
    size_t n = 0;
    for (size_t i = 0; i < cmd->nflags && n < 80; i++)
        cands[n++] = cmd->flags[i].flag;
    for (size_t i = 0; cmd->serve_flags && i < config_nsettings && n < 80; i++) {
        if (config_settings[i].flag)
            cands[n++] = config_settings[i].flag;
    }
    if (n < 80)
        cands[n++] = "--help";
    return config_suggest(flag, cands, n);
}
