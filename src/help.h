/* help.h - what the tassa command says about itself: per-command help, the manual page, the
 * configuration file and the README's settings table, all printed from one description of the
 * commands (main.c) and one table of settings (config_settings). Nothing here is written by
 * hand twice: tassa.1 and tassa.env are generated at build time by `tassa settings`.
 *
 * Layer: app.
 */
#ifndef TASSA_HELP_H
#define TASSA_HELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One command-specific flag (the settings' flags come from config_settings). */
typedef struct {
    const char *flag;    /* "--ttl" */
    const char *arg;     /* "SECONDS", or NULL for a switch */
    const char *meaning; /* one line */
    const char *def;     /* default as text, or NULL */
    const char *example; /* a sample value */
} help_flag_t;

/* One command of the tassa program. */
typedef struct {
    const char *name;    /* "serve" */
    const char *args;    /* synopsis after the name: "IDENTITY [--ttl SECONDS]" */
    const char *summary; /* one line */
    const char *details; /* a paragraph, or NULL */
    const char *example; /* a full sample command line */
    const help_flag_t *flags;
    size_t nflags;
    bool serve_flags;            /* also takes the settings' flags (--port, --data, ...) */
    const char *const *settings; /* names of the settings it reads; NULL-terminated */
    bool all_settings;           /* it reads every setting (serve) */
    int (*run)(int argc, char **argv);
} help_command_t;

/* Prints `tassa CMD --help`: usage, flags with defaults and examples, and the settings it
 * reads. f must be open for writing. */
void help_command(FILE *f, const help_command_t *cmd);

/* Prints `tassa --help`: every command with its summary, then every setting. */
void help_overview(FILE *f, const help_command_t *cmds, size_t n, const char *version);

/* Prints the manual page tassa.1 (roff) for the commands and every setting. */
void help_man(FILE *f, const help_command_t *cmds, size_t n, const char *version);

/* Prints tassa.env: every setting commented out, with its meaning and its default. */
void help_env_file(FILE *f);

/* Prints the README's settings table (Markdown), one row per setting. */
void help_markdown(FILE *f);

/* Is flag one that cmd accepts (its own or, when serve_flags, a setting's)? */
bool help_accepts(const help_command_t *cmd, const char *flag);

/* Does flag of cmd take a value (false for switches)? Unknown flags: true. */
bool help_takes_value(const help_command_t *cmd, const char *flag);

/* The flag of cmd closest to flag (a likely typo), or NULL. */
const char *help_suggest_flag(const help_command_t *cmd, const char *flag);

#endif
