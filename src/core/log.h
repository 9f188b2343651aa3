/* Leveled logging to stderr. Never pass secrets (API keys, Authorization headers) to these functions. */
#ifndef LX_LOG_H
#define LX_LOG_H

enum lx_log_level { LX_LOG_DEBUG, LX_LOG_INFO, LX_LOG_WARN, LX_LOG_ERROR };

void lx_log_set_level(enum lx_log_level level);
int lx_log_parse_level(const char *name, enum lx_log_level *out);
void lx_log(enum lx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lx_debug(...) lx_log(LX_LOG_DEBUG, __VA_ARGS__)
#define lx_info(...) lx_log(LX_LOG_INFO, __VA_ARGS__)
#define lx_warn(...) lx_log(LX_LOG_WARN, __VA_ARGS__)
#define lx_error(...) lx_log(LX_LOG_ERROR, __VA_ARGS__)

#endif
