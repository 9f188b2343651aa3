/* A JSON Schema instance generator for the mock provider: a value that validates against a tool's
 * `parameters` or a `response_format` schema, so SDKs that parse and validate what a model answers get
 * something they accept. Deterministic: the same schema and text give the same value. */
#ifndef LX_MOCK_SCHEMA_H
#define LX_MOCK_SCHEMA_H

#include <jansson.h>

/* A new value for schema (borrowed; NULL or {} accept anything). The first free-form string gets text
 * (the user's words; may be NULL), later ones a placeholder named after their property.
 * Understood: type (and type lists), enum, const, properties, required, additionalProperties,
 * minProperties, items, prefixItems, minItems, maxItems, uniqueItems, minLength, maxLength, format
 * (date-time, date, time, email, uri, uuid, ipv4, ipv6, hostname, duration), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, anyOf, oneOf (the first non-null branch), allOf
 * (merged), $ref into the same document ($defs, definitions, "#"). Not understood: pattern (outside
 * the formats above), patternProperties, contains, if/then/else, not. Bounded: past a nesting of 24 or
 * 4096 values in all, the rest is null. */
json_t *lx_schema_instance(json_t *schema, const char *text);

#endif
