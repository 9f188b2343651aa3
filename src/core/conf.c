/* The configuration's reference count and warnings; its sections are freed by the function that built
 * them. */
#include "conf.h"
#include "common.h"

#include <stdarg.h>
#include <stdlib.h>

struct lx_config *lx_config_new(void (*free_sections)(struct lx_config *c))
{
    struct lx_config *c = lx_calloc(1, sizeof *c);
    c->refs = 1;
    c->free_sections = free_sections;
    return c;
}

struct lx_config *lx_config_ref(struct lx_config *c)
{
    c->refs++;
    return c;
}

void lx_config_unref(struct lx_config *c)
{
    if (!c || --c->refs > 0)
        return;
    if (c->free_sections)
        c->free_sections(c);
    for (size_t i = 0; i < c->n_warnings; i++)
        free(c->warnings[i]);
    free(c->warnings);
    free(c);
}

void lx_config_warn(struct lx_config *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lx_strs_push(&c->warnings, &c->n_warnings, lx_vsprintf(fmt, ap));
    va_end(ap);
}
