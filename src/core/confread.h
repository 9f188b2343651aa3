/* Reading the configuration: typed readers over a JSON object that write "key.path: reason" into err
 * (never the value: it may be a secret), and ${VAR} expansion. Every section's parser uses them, the
 * provider types' configure() slots too. */
#ifndef LX_CONFREAD_H
#define LX_CONFREAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* err = the formatted message (truncated to errlen). */
void lx_conf_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Expand ${VAR} and ${VAR:-default} in s. Returns a new string, or NULL with *missing set to a new
 * string naming the first unset variable. */
char *lx_env_expand(const char *s, char **missing);
/* Expand every string in the tree v (at key path `path`) in place. LX_ERR with *missing and *where
 * (the key path) set, as new strings, at the first unset variable. */
int lx_conf_expand(json_t *v, const char *path, char **missing, char **where);

/* The readers: each leaves *out alone when obj has no such key. path is obj's own path ("" at the root). */
int lx_conf_unknown_keys(json_t *obj, const char *const *allowed, const char *path, char *err, size_t errlen);
int lx_conf_long(json_t *obj, const char *key, const char *path, long min, long max, long *out, char *err,
                 size_t errlen);
int lx_conf_bool(json_t *obj, const char *key, const char *path, bool *out, char *err, size_t errlen);
/* A string (replacing *out, which is owned). */
int lx_conf_string(json_t *obj, const char *key, const char *path, char **out, char *err, size_t errlen);
/* An object (borrowed), or *out = NULL when absent. */
int lx_conf_object(json_t *obj, const char *key, const char *path, json_t **out, char *err, size_t errlen);
/* An array of non-empty strings (owned copies, *n of them). */
int lx_conf_strings(json_t *obj, const char *key, const char *path, char ***out, size_t *n, char *err,
                    size_t errlen);

/* A header name (name: non-empty, no ':' or spaces) or value that is safe to send: no line breaks. */
bool lx_conf_header_part(const char *s, bool name);

#endif
